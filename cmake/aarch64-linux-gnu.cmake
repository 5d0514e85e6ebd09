# Cross-build for AArch64 Linux on a Debian x86-64 machine, tests run under
# qemu-user:
#
#   dpkg --add-architecture arm64 && apt-get update
#   apt-get install gcc-aarch64-linux-gnu qemu-user gdb-multiarch check:arm64
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
#   cmake --build build-aarch64 -j2 && ctest --test-dir build-aarch64
#
# check:arm64 (Debian multiarch) brings Check and the arm64 C library to
# /usr/lib/aarch64-linux-gnu and its loader to /lib/ld-linux-aarch64.so.1,
# where qemu-aarch64 finds them without -L.  Debian's cross gcc searches
# /usr/include after its own headers, which is where check.h is.  ctest runs
# every test program through CMAKE_CROSSCOMPILING_EMULATOR; set
# QEMU_PAGESIZE=65536 in the environment to run them with 64 KiB pages.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_ASM_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
# pkg-config (Check) from the arm64 tree only.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
