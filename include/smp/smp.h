// smp-cpp: segmentation models with timm backbones in C++. One include for the whole public API.
#pragma once

#include <smp/archs/deeplabv3.h>
#include <smp/archs/dpt.h>
#include <smp/archs/fpn.h>
#include <smp/archs/linknet.h>
#include <smp/archs/manet.h>
#include <smp/archs/pan.h>
#include <smp/archs/pspnet.h>
#include <smp/archs/segformer.h>
#include <smp/archs/unetplusplus.h>
#include <smp/archs/upernet.h>
#include <smp/data.h>
#include <smp/encoders.h>
#include <smp/hub.h>
#include <smp/image.h>
#include <smp/inference.h>
#include <smp/io.h>
#include <smp/log.h>
#include <smp/losses.h>
#include <smp/metrics.h>
#include <smp/models.h>
#include <smp/modules.h>
#include <smp/pretrained.h>
#include <smp/predict.h>
#include <smp/preprocessing.h>
#include <smp/reparameterize.h>
#include <smp/train.h>
#include <smp/timm.h>
#include <smp/vit_encoder.h>

namespace smp {

// Sets LibTorch's intra-op thread count: `threads` > 0, else SMP_NUM_THREADS, else all cores; OpenBLAS
// gets one thread per call (its own pool would compete with LibTorch's).
// Returns the count in use.
int configure_threads(int threads = 0);

// CPU tensor memory from a caching allocator (true) or LibTorch's own (false). The caching one keeps
// freed blocks of 64 KiB and more for reuse, large ones on transparent huge pages, so repeated
// passes over the same shapes touch no fresh memory: first touches of pages dominate the time of
// memory-bound ops on some machines (measured on this project's VMs: ~16 us per 4 KiB page). The
// library's inference and training paths install it on first use unless SMP_CPU_ALLOCATOR=system is
// set or this was called with false. It never keeps more free memory than was at most in use.
void configure_cpu_allocator(bool caching = true);

}  // namespace smp
