// One registration function per architecture; the factory calls each once.
#pragma once

namespace smp {

void register_unet();
void register_linknet();
void register_dpt();
void register_fpn();
void register_pspnet();
void register_pan();
void register_deeplabv3();  // DeepLabV3 and DeepLabV3Plus
void register_unetplusplus();
void register_manet();
void register_upernet();
void register_segformer();

}  // namespace smp
