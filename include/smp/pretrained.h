// Model folders as smp's save_pretrained writes them: config.json + model.safetensors.
#pragma once

#include <smp/models.h>

#include <string>

namespace smp {

// Loads a folder written by save_pretrained (smp's in Python or SegmentationModelImpl::save_pretrained):
// builds the architecture config.json names in "_model_class" from its keyword arguments (keys starting
// with "_" are dropped, as smp does) and loads model.safetensors, or pytorch_model.bin (torch.save) when
// the folder has no safetensors file. Tensors of other floating dtypes (float16, bfloat16) are converted
// to the model's. strict: any missing, unexpected or mis-shaped key throws std::runtime_error listing
// them all; otherwise those are skipped with a warning. The encoder's own weights ("encoder_weights")
// are never fetched: the checkpoint holds them, and config() keeps the value the file had.
// `path_or_id` is a local folder or, when no such folder exists, a Hugging Face Hub model id
// ("smp-hub/segformer-b0-512x512-ade-160k"): its config.json and weights are downloaded into the hub
// cache (smp/hub.h: HF_ENDPOINT, HF_HUB_OFFLINE, ... apply) and read from there.
SegmentationModel from_pretrained(const std::string& path_or_id, bool strict = true);
// The same with smp's keyword overrides (`smp.from_pretrained(id, classes=5)`): `overrides` (a JSON
// object of keyword arguments) replaces the config's values before the model is built, so config()
// and a later save_pretrained hold them. Head tensors the checkpoint lacks or holds in another shape
// (segmentation_head.*, classification_head.*: a new number of classes, added aux_params) keep their
// fresh initialisation, with one warning naming them; every other key loads as `strict` says.
SegmentationModel from_pretrained(const std::string& path_or_id, const nlohmann::json& overrides, bool strict = true);

}  // namespace smp
