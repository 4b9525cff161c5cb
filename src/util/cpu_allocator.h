// The caching CPU allocator behind smp::configure_cpu_allocator (smp/smp.h).
#pragma once

namespace smp::detail {

// Installs the caching allocator unless SMP_CPU_ALLOCATOR=system or configure_cpu_allocator(false)
// asked for the system one; the library's inference and training paths call this before they run.
void ensure_cpu_allocator();

}  // namespace smp::detail
