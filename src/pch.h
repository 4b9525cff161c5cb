// The one precompiled header: torch/torch.h alone costs ~20 s per translation unit.
#pragma once
#include <torch/torch.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>
