# Compiler flags for the FEDTRACK_FUZZ configuration (see tests/fuzz/CMakeLists.txt):
# every object, the libraries under test included, gets libFuzzer's coverage
# instrumentation, AddressSanitizer and UndefinedBehaviorSanitizer; any UB
# report aborts (-fno-sanitize-recover) so libFuzzer records it as a crash;
# libstdc++'s own bounds checks (operator[], front(), back()) are on as well.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR
    "FEDTRACK_FUZZ needs clang (configure with CXX=clang++), found ${CMAKE_CXX_COMPILER_ID}.\n"
    "On Debian 12: apt-get install clang libclang-rt-14-dev (or run scripts/fuzz.sh).")
endif()
add_compile_options(-g -O1 -fno-omit-frame-pointer -D_GLIBCXX_ASSERTIONS
  -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined)
add_link_options(-fsanitize=address,undefined)
