// The `smp` verbs defined outside main.cpp: each adds its subcommand, and sets `run` to its action
// when that subcommand is on the command line.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace smp::cli {

void add_train_command(CLI::App& app, std::function<int()>& run);
void add_eval_command(CLI::App& app, std::function<int()>& run);
void add_demo_command(CLI::App& app, std::function<int()>& run);
void add_bench_command(CLI::App& app, std::function<int()>& run);

}  // namespace smp::cli
