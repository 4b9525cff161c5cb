// One registration function per architecture; the factory calls each once.
#pragma once

namespace smp {

void register_unet();

}  // namespace smp
