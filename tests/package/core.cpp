// fedtrack::core: a model's parameters through the FTPM encoding (LibTorch).
#include <torch/types.h>

#include <iostream>

#include "fedtrack/core/parameters.h"

int main() {
  fedtrack::Parameters params;
  params.names = {"fc.weight"};
  params.tensors = {torch::arange(6, torch::kFloat32).reshape({2, 3})};
  params.buffer_begin = 1;
  fedtrack::Parameters back = fedtrack::decode_parameters(fedtrack::encode_parameters(params));
  if (back.names != params.names || !torch::equal(back.tensors[0], params.tensors[0])) return 1;
  std::cout << "core ok\n";
  return 0;
}
