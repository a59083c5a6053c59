# Finds every third-party dependency. Each comes from a Debian 12 package;
# a missing one stops the configure step naming the package to install.

function(fedtrack_require found_var what debian_package)
  if(NOT ${found_var})
    message(FATAL_ERROR
      "fedtrack needs ${what}, which was not found.\n"
      "On Debian 12: apt-get install ${debian_package}\n"
      "(or run: bash scripts/setup.sh, which installs everything).")
  endif()
endfunction()

find_package(Torch QUIET)
fedtrack_require(Torch_FOUND "LibTorch" libtorch-dev)

find_package(ONNX QUIET)  # ONNX export: the protobuf classes and onnx::checker
fedtrack_require(ONNX_FOUND "ONNX (libonnx)" libonnx-dev)

find_package(Poco QUIET COMPONENTS Foundation Net NetSSL)
fedtrack_require(Poco_FOUND "Poco (Foundation, Net, NetSSL)" libpoco-dev)

find_package(yaml-cpp QUIET)
fedtrack_require(yaml-cpp_FOUND "yaml-cpp" libyaml-cpp-dev)

find_package(CLI11 QUIET)
fedtrack_require(CLI11_FOUND "CLI11" libcli11-dev)

find_package(nlohmann_json 3 QUIET)
fedtrack_require(nlohmann_json_FOUND "nlohmann/json" nlohmann-json3-dev)

find_package(PkgConfig QUIET)  # libsodium: secure aggregation's key agreement, AEAD and masks
if(PkgConfig_FOUND)
  pkg_check_modules(SODIUM QUIET IMPORTED_TARGET libsodium)
endif()
fedtrack_require(SODIUM_FOUND "libsodium (through pkg-config)" "libsodium-dev pkg-config")

find_package(Threads REQUIRED)

if(FEDTRACK_BUILD_TESTS)
  find_package(GTest QUIET)
  fedtrack_require(GTest_FOUND "GoogleTest" "libgtest-dev libgmock-dev")
endif()
if(FEDTRACK_BUILD_BENCH)
  find_package(benchmark QUIET)
  fedtrack_require(benchmark_FOUND "Google Benchmark" libbenchmark-dev)
endif()

