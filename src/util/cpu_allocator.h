// The caching CPU allocator behind smp::configure_cpu_allocator (smp/smp.h).
#pragma once

namespace smp::detail {

// Installs the caching allocator unless SMP_CPU_ALLOCATOR=system or configure_cpu_allocator(false)
// asked for the system one; the library's inference and training paths call this before they run.
void ensure_cpu_allocator();

// Hands the caching allocator's free blocks back to the system (a no-op under the system allocator):
// between phases whose block sizes differ (tracing's eager pass, then the compiled program), so the
// first phase's cache does not add to the second's peak.
void trim_cpu_allocator();

}  // namespace smp::detail
