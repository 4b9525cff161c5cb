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
void register_vgg_family();
void register_densenet_family();
void register_dla_family();
void register_hrnet_family();
void register_vision_transformer_family();
void register_metaformer_family();
void register_mambaout_family();
void register_swin_transformer_family();
void register_eva_family();
void register_levit_family();

}  // namespace smp::timm
