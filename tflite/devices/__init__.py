"""Device set-up for checking exports where they run, apart from the export itself: emulated
aarch64 CPUs (``arm``: the aarch64 LiteRT wheel under qemu-user), Mesa's software Vulkan for
LiteRT's GPU accelerator (``lavapipe``), and the private apt folder both fetch Debian packages
through (``private_apt``)."""
