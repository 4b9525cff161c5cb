// One registration function per backbone family; the registry calls each once.
#pragma once

namespace smp::timm {

// (one declaration per family)
void register_xcit_family();
void register_resnet_family();
void register_efficientformer_family();
void register_convnext_family();
void register_regnet_family();
void register_efficientnet_family();
void register_mobilenetv3_family();

}  // namespace smp::timm
