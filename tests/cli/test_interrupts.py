"""Ctrl-C where Python would lose it (a gc callback) or where raising can crash the process (a
native import): ``levit_tf.cli.interrupts.SigintGuard`` turns each into one KeyboardInterrupt at a
safe point. Each case is a real SIGINT in its own process (no TensorFlow imported), with a
script that reports how far it got; without the guard the gc case prints "Exception ignored"
and exits 0."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# SIGINT as a terminal leaves it to Python, also when pytest runs as a background job of a
# non-interactive shell (which starts it ignored)
PRELUDE = """
import gc, os, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
from levit_tf.cli.interrupts import SigintGuard, in_gc_callback

def interrupt_me():
    os.kill(os.getpid(), signal.SIGINT)
    for _ in range(100_000):  # Python runs the handler at one of these bytecodes
        pass

def interrupt_inside_a_gc_callback():
    # a collection whose one-shot callback is interrupted; it prints "callback finished"
    # if the interrupt did not end it
    fired = []

    def callback(phase, info):
        if phase == "start" and not fired:
            fired.append(phase)
            interrupt_me()
            print("callback finished", flush=True)

    gc.callbacks.append(callback)
    gc.collect()
"""


def run(body: str) -> subprocess.CompletedProcess:
    script = PRELUDE + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)


def test_an_interrupt_in_a_gc_callback_is_raised_after_it():
    result = run("""
        with SigintGuard():
            try:
                interrupt_inside_a_gc_callback()
                for _ in range(500):  # the interrupt must arrive within 5 s
                    time.sleep(0.01)
                print("not interrupted")
            except KeyboardInterrupt:
                print("interrupted")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["callback", "finished", "interrupted"], result.stdout
    assert "Exception ignored" not in result.stderr, result.stderr


def test_without_the_guard_python_loses_that_interrupt():
    """The failure the guard is for, reproduced: this test fails if Python ever stops losing
    it (then the guard's redelivery would raise a second interrupt)."""
    result = run("""
        try:
            interrupt_inside_a_gc_callback()
            time.sleep(0.1)
            print("not interrupted")
        except KeyboardInterrupt:
            print("interrupted")
    """)
    assert result.stdout.split() == ["not", "interrupted"], result.stdout
    assert "KeyboardInterrupt" in result.stderr  # "Exception ignored in ..." and its traceback


def test_a_deferred_interrupt_is_raised_when_the_block_ends():
    result = run("""
        with SigintGuard() as guard:
            try:
                with guard.deferred():
                    interrupt_me()
                    print("block finished", flush=True)
                print("after the block")
            except KeyboardInterrupt:
                print("interrupted")
            print("pending", guard.pending)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["block", "finished", "interrupted", "pending", "False"]


def test_elsewhere_it_interrupts_at_once_and_the_old_handler_comes_back():
    result = run("""
        previous = signal.getsignal(signal.SIGINT)
        with SigintGuard():
            try:
                interrupt_me()
                print("not interrupted")
            except KeyboardInterrupt:
                print("interrupted")
        print("restored", signal.getsignal(signal.SIGINT) is previous)
        print("outside a callback", in_gc_callback(sys._getframe()))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["interrupted", "restored", "True", "outside", "a",
                                     "callback", "False"]


def test_an_ignored_sigint_stays_ignored():
    """A background job of a non-interactive shell inherits SIGINT ignored; the guard keeps
    it so."""
    result = run("""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with SigintGuard():
            interrupt_me()
            print("not interrupted")
        print("still ignored", signal.getsignal(signal.SIGINT) is signal.SIG_IGN)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["not", "interrupted", "still", "ignored", "True"]
