// Builds a model through the installed headers and library and runs it once.
#include <smp/models.h>

#include <iostream>

int main() {
  auto model = smp::create_model("Unet", {"encoder_name=resnet18", "encoder_depth=3", "decoder_channels=[16,8,4]",
                                          "classes=2"});
  model->eval();
  torch::NoGradGuard no_grad;
  const auto mask = model->forward(torch::zeros({1, 3, 64, 64}));
  std::cout << "consumer: mask " << mask.sizes() << " from " << model->config().dump() << std::endl;
  return mask.sizes() == torch::IntArrayRef({1, 2, 64, 64}) ? 0 : 1;
}
