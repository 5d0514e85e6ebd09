# check_weft_text.cmake — weft's static library must not call code that a
# static link would place in the program's text outside weft_text.
#
# The tick preempts only where the interrupted PC is the program's own code
# and outside weft_text (docs/design.md §7, "Safe points"); code that weft
# calls but that the linker copies from another static archive into the
# program's .text (libgcc's helpers: AArch64 outline atomics __aarch64_*,
# 128-bit arithmetic __*ti3, soft-float __*tf3 ...) would be taken for the
# program's, and a tick there would switch in the middle of weft.  Calls into
# shared libraries (libc) are fine: their code is never a safe point.
#
#   cmake -DNM=<nm> -DLIB=<libweft.a> -P check_weft_text.cmake
if(NOT NM OR NOT LIB)
  message(FATAL_ERROR "usage: cmake -DNM=<nm> -DLIB=<libweft.a> -P check_weft_text.cmake")
endif()
execute_process(COMMAND ${NM} -u ${LIB} OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NM} -u ${LIB} failed (${rc})")
endif()
string(REGEX MATCHALL "[^\n]+" lines "${out}")
set(bad "")
set(n 0)
foreach(line IN LISTS lines)
  string(REGEX REPLACE "^ *U +" "" sym "${line}")
  if(sym STREQUAL line)
    continue()   # "member.o:" headers and blank lines
  endif()
  math(EXPR n "${n} + 1")
  # libgcc and libatomic helper families.
  if(sym MATCHES "^__aarch64_" OR sym MATCHES "^__(u?(div|mod|mul)|ashl|ashr|lshr|neg|cmp|ucmp|ffs|clz|ctz|popcount|parity|bswap)[a-z]*[dt]i[23]$"
     OR sym MATCHES "^__[a-z]+[sdtx]f[23]$" OR sym MATCHES "^__atomic_" OR sym MATCHES "^__sync_"
     OR sym MATCHES "^__gcc_" OR sym STREQUAL "__clear_cache")
    list(APPEND bad "${sym}")
  endif()
endforeach()
if(n EQUAL 0)
  message(FATAL_ERROR "no undefined symbols read from ${LIB}: is ${NM} the right nm?")
endif()
list(REMOVE_DUPLICATES bad)
if(bad)
  message(FATAL_ERROR "libweft.a calls helpers that a static link puts in the "
    "program's text, outside weft_text: ${bad}")
endif()
message(STATUS "libweft.a: ${n} undefined references, none to a static helper")
