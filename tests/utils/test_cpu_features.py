"""levit_tf.utils.cpu_features: the int8 capability line every quantized figure carries."""

from pathlib import Path

from levit_tf.utils.cpu_features import cpu_flags, int8_capability, int8_instructions


def _cpuinfo(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    return path


def test_x86_flags(tmp_path):
    zen4 = _cpuinfo(tmp_path, "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni\n"
                              "processor\t: 1\nflags\t\t: fpu\n")
    flags = cpu_flags(zen4)
    assert "avx512_vnni" in flags and "fpu" in flags  # the first CPU's line
    assert int8_instructions(flags) == ["AVX-512 VNNI"]
    assert int8_capability(flags, "x86_64") == "x86_64, int8 dot product: AVX-512 VNNI"
    avx2 = cpu_flags(_cpuinfo(tmp_path, "flags\t: fpu avx2 fma\n"))
    line = int8_capability(avx2, "x86_64")
    assert line.startswith("x86_64, no int8 dot product") and "VNNI" in line


def test_arm_features(tmp_path):
    a76 = cpu_flags(_cpuinfo(tmp_path, "processor\t: 0\nFeatures\t: fp asimd fphp asimdhp "
                                       "asimddp\n"))
    assert int8_capability(a76, "aarch64") == "aarch64, int8 dot product: dotprod (SDOT)"
    a53 = cpu_flags(_cpuinfo(tmp_path, "Features\t: fp asimd\n"))
    assert "dotprod / i8mm" in int8_capability(a53, "aarch64")


def test_unreadable_cpuinfo(tmp_path):
    assert cpu_flags(tmp_path / "missing") == set()
    assert "no int8 dot product" in int8_capability(set(), "x86_64")


def test_this_machine_is_named():
    line = int8_capability()
    assert line and ("int8 dot product:" in line or "no int8 dot product" in line)
