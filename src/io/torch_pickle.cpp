// State dicts saved by torch.save (zip format): a restricted unpickler in the spirit of PyTorch's
// weights_only loader. The pickle machine only builds plain values; the few globals a state dict
// names (OrderedDict, the tensor rebuild functions, storage classes) are interpreted here, never run.
#include "io/torch_pickle.h"

#include <caffe2/serialize/inline_container.h>

#include <fmt/format.h>

#include <cstring>
#include <deque>
#include <fstream>
#include <cstdint>
#include <limits>
#include <map>
#include <set>

namespace smp::io {

namespace detail {

namespace {

struct Value {
  enum Kind { kNone, kBool, kInt, kFloat, kString, kBytes, kTuple, kList, kDict, kTensor, kGlobal, kStorage, kMark };
  Kind kind = kNone;
  int64_t i = 0;          // kBool, kInt
  double f = 0;           // kFloat
  std::string s;          // kString, kBytes, kGlobal ("module name")
  std::vector<Value*> items;  // kTuple, kList; kDict: key, value, key, value, ...
  torch::Tensor tensor;   // kTensor, kStorage (1-d, the storage's elements)
};

const char* kind_name(Value::Kind k) {
  static const char* names[] = {"None",   "bool",   "int",    "float",  "str",     "bytes", "tuple",
                                "list",   "dict",   "tensor", "global", "storage", "mark"};
  return names[k];
}

struct StorageClass {
  const char* name;
  torch::Dtype dtype;
};
constexpr StorageClass kStorageClasses[] = {
    {"torch FloatStorage", torch::kFloat32}, {"torch DoubleStorage", torch::kFloat64},
    {"torch HalfStorage", torch::kFloat16},  {"torch BFloat16Storage", torch::kBFloat16},
    {"torch LongStorage", torch::kInt64},    {"torch IntStorage", torch::kInt32},
    {"torch ShortStorage", torch::kInt16},   {"torch CharStorage", torch::kInt8},
    {"torch ByteStorage", torch::kUInt8},    {"torch BoolStorage", torch::kBool},
};

// Callables and classes a state-dict pickle may name; everything else is refused at GLOBAL.
const std::set<std::string>& allowed_globals() {
  static const std::set<std::string> names = [] {
    std::set<std::string> s = {"collections OrderedDict", "torch._utils _rebuild_tensor_v2",
                               "torch._utils _rebuild_parameter", "torch._utils _rebuild_parameter_with_state",
                               "_codecs encode"};
    for (const auto& c : kStorageClasses) s.insert(c.name);
    return s;
  }();
  return names;
}

class Unpickler {
 public:
  Unpickler(const uint8_t* data, size_t size, const StorageLoader& load, std::string what)
      : p_(data), end_(data + size), begin_(data), load_(load), what_(std::move(what)) {}

  Value* run() {
    while (true) {
      const size_t at = pos();
      const uint8_t op = u8();
      if (op == '.') break;
      step(op, at);
    }
    if (stack_.size() != 1) fail(fmt::format("pickle ends with {} values on its stack instead of 1", stack_.size()));
    return stack_.back();
  }

  [[noreturn]] void fail(const std::string& problem) const { throw std::runtime_error(what_ + ": " + problem); }

 private:
  size_t pos() const { return static_cast<size_t>(p_ - begin_); }

  const uint8_t* take(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) fail("truncated pickle (ends inside an opcode's argument)");
    const auto* at = p_;
    p_ += n;
    return at;
  }
  uint8_t u8() { return *take(1); }
  uint64_t uint_le(size_t n) {
    const auto* b = take(n);
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = (v << 8) | b[i];
    return v;
  }
  std::string bytes(uint64_t n) {
    if (n > static_cast<uint64_t>(end_ - p_)) fail("truncated pickle (a string runs past its end)");
    const auto* b = take(static_cast<size_t>(n));
    return std::string(reinterpret_cast<const char*>(b), static_cast<size_t>(n));
  }
  std::string line() {
    const auto* nl = static_cast<const uint8_t*>(std::memchr(p_, '\n', static_cast<size_t>(end_ - p_)));
    if (!nl) fail("truncated pickle (GLOBAL without its newline)");
    std::string s(reinterpret_cast<const char*>(p_), static_cast<size_t>(nl - p_));
    p_ = nl + 1;
    return s;
  }

  Value* make(Value::Kind kind) {
    arena_.emplace_back();
    arena_.back().kind = kind;
    return &arena_.back();
  }
  Value* make_int(int64_t v, Value::Kind kind = Value::kInt) {
    auto* x = make(kind);
    x->i = v;
    return x;
  }
  Value* make_string(std::string s, Value::Kind kind = Value::kString) {
    auto* x = make(kind);
    x->s = std::move(s);
    return x;
  }

  Value* pop() {
    if (stack_.empty() || stack_.back()->kind == Value::kMark) fail("pickle pops from an empty stack");
    auto* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Value* top() {
    if (stack_.empty() || stack_.back()->kind == Value::kMark) fail("pickle reads from an empty stack");
    return stack_.back();
  }
  // Values above the topmost MARK, which is removed.
  std::vector<Value*> pop_mark() {
    size_t m = stack_.size();
    while (m > 0 && stack_[m - 1]->kind != Value::kMark) --m;
    if (m == 0) fail("pickle has no MARK for a mark-terminated opcode");
    std::vector<Value*> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m - 1);
    return items;
  }
  Value* tuple(std::vector<Value*> items) {
    auto* t = make(Value::kTuple);
    t->items = std::move(items);
    return t;
  }
  Value* container(Value::Kind kind, const char* op) {
    auto* v = top();
    if (v->kind != kind) fail(fmt::format("{} on a {}", op, kind_name(v->kind)));
    return v;
  }
  void set_items(Value* dict, const std::vector<Value*>& kv) {
    if (kv.size() % 2) fail("SETITEMS with an odd number of values");
    for (size_t i = 0; i < kv.size(); i += 2) {
      if (kv[i]->kind != Value::kString && kv[i]->kind != Value::kInt)
        fail(fmt::format("dict key of type {} (only str and int keys are read)", kind_name(kv[i]->kind)));
      dict->items.push_back(kv[i]);
      dict->items.push_back(kv[i + 1]);
    }
  }
  void memo_put(uint64_t index) { memo_[index] = top(); }
  Value* memo_get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) fail(fmt::format("pickle reads memo entry {}, which was never stored", index));
    return it->second;
  }

  Value* global(const std::string& module, const std::string& name) {
    const auto full = module + " " + name;
    if (!allowed_globals().count(full))
      fail(fmt::format("refusing global '{}.{}': only the objects of a state dict (tensors, storages, "
                       "OrderedDict, numbers, strings, lists, dicts) are read, and nothing in the file is run",
                       module, name));
    return make_string(full, Value::kGlobal);
  }

  // BINPERSID: ('storage', storage class, key, location, numel).
  Value* persistent_load(Value* pid) {
    const auto& t = pid->items;
    if (pid->kind != Value::kTuple || t.size() != 5 || t[0]->kind != Value::kString || t[0]->s != "storage" ||
        t[1]->kind != Value::kGlobal || t[2]->kind != Value::kString || t[3]->kind != Value::kString ||
        t[4]->kind != Value::kInt)
      fail("persistent id is not ('storage', storage class, key, location, numel)");
    const torch::Dtype* dtype = nullptr;
    for (const auto& c : kStorageClasses)
      if (t[1]->s == c.name) dtype = &c.dtype;
    if (!dtype) fail("persistent id names " + t[1]->s + ", not a storage class");
    const auto& key = t[2]->s;
    if (t[4]->i < 0) fail(fmt::format("storage '{}' has a negative size", key));
    auto it = storages_.find(key);
    if (it == storages_.end()) {
      auto storage = make(Value::kStorage);
      storage->tensor = load_(key, *dtype, t[4]->i);
      it = storages_.emplace(key, storage).first;
    } else if (it->second->tensor.scalar_type() != *dtype || it->second->tensor.numel() != t[4]->i) {
      fail(fmt::format("storage '{}' is named twice with different types or sizes", key));
    }
    return it->second;
  }

  std::vector<int64_t> int_tuple(Value* v, const char* what) {
    if (v->kind != Value::kTuple) fail(fmt::format("tensor {} is a {}, not a tuple", what, kind_name(v->kind)));
    std::vector<int64_t> out;
    for (auto* e : v->items) {
      if (e->kind != Value::kInt || e->i < 0) fail(fmt::format("tensor {} holds a non-integer or negative entry", what));
      out.push_back(e->i);
    }
    return out;
  }

  // _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks[, metadata]).
  Value* rebuild_tensor(const std::vector<Value*>& a) {
    if (a.size() < 6 || a.size() > 7 || a[0]->kind != Value::kStorage || a[1]->kind != Value::kInt)
      fail("_rebuild_tensor_v2 needs (storage, offset, size, stride, requires_grad, backward_hooks)");
    const auto& storage = a[0]->tensor;
    const int64_t offset = a[1]->i;
    const auto size = int_tuple(a[2], "size"), stride = int_tuple(a[3], "stride");
    if (size.size() != stride.size()) fail("tensor size and stride have different lengths");
    if (offset < 0) fail("tensor has a negative storage offset");
    // A view never holds more elements than its storage (expanded or overlapping views are refused, so a
    // small file cannot claim a huge tensor), and its last element lies inside the storage; all
    // arithmetic is overflow-checked.
    uint64_t numel = 1;
    bool empty = false;
    for (auto s : size) {
      if (s == 0) empty = true;
      else if (numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / s) fail("tensor size overflows");
      else numel *= s;
    }
    if (empty) numel = 0;
    if (numel > static_cast<uint64_t>(storage.numel()))
      fail(fmt::format("tensor of size [{}] has more elements than its storage of {}", fmt::join(size, ", "),
                       storage.numel()));
    uint64_t last = static_cast<uint64_t>(offset);
    for (size_t d = 0; d < size.size() && numel > 0; ++d) {
      const auto span = static_cast<uint64_t>(size[d] - 1), step = static_cast<uint64_t>(stride[d]);
      last = step && span > (UINT64_MAX - last) / step ? UINT64_MAX : last + span * step;
    }
    if (numel > 0 ? last >= static_cast<uint64_t>(storage.numel()) : offset > storage.numel())
      fail(fmt::format("tensor of size [{}] at offset {} reaches past its storage of {} elements",
                       fmt::join(size, ", "), offset, storage.numel()));
    auto t = storage.as_strided(size, stride, offset);
    auto* v = make(Value::kTensor);
    // A tensor that is its whole storage keeps it; views (offsets, strides, shared storages) are copied out.
    v->tensor = t.is_contiguous() && t.numel() == storage.numel() ? t : t.clone(at::MemoryFormat::Contiguous);
    return v;
  }

  Value* reduce(Value* callable, Value* args) {
    if (callable->kind != Value::kGlobal) fail(fmt::format("REDUCE calls a {}", kind_name(callable->kind)));
    if (args->kind != Value::kTuple) fail("REDUCE arguments are not a tuple");
    const auto& a = args->items;
    const auto& name = callable->s;
    if (name == "collections OrderedDict") {
      if (!a.empty()) fail("OrderedDict is built with arguments (only OrderedDict() is read)");
      return make(Value::kDict);
    }
    if (name == "torch._utils _rebuild_tensor_v2") return rebuild_tensor(a);
    if (name == "torch._utils _rebuild_parameter" || name == "torch._utils _rebuild_parameter_with_state") {
      if (a.size() < 3 || a[0]->kind != Value::kTensor) fail(name.substr(name.find(' ') + 1) + " needs a tensor");
      return a[0];
    }
    if (name == "_codecs encode") {  // protocol 2 writes bytes as encode(text, "latin1")
      if (a.size() != 2 || a[0]->kind != Value::kString || a[1]->kind != Value::kString || a[1]->s != "latin1")
        fail("_codecs.encode is only read as encode(text, 'latin1')");
      return make_string(latin1(a[0]->s), Value::kBytes);
    }
    fail(fmt::format("REDUCE on '{}', which is not callable here", name));
  }

  // UTF-8 text of code points < 256 -> those bytes.
  std::string latin1(const std::string& utf8) {
    std::string out;
    for (size_t i = 0; i < utf8.size(); ++i) {
      const auto c = static_cast<uint8_t>(utf8[i]);
      if (c < 0x80) {
        out += static_cast<char>(c);
      } else if ((c == 0xC2 || c == 0xC3) && i + 1 < utf8.size()) {
        out += static_cast<char>(((c & 0x03) << 6) | (static_cast<uint8_t>(utf8[++i]) & 0x3F));
      } else {
        fail("latin1 bytes with a character above U+00FF");
      }
    }
    return out;
  }

  void step(uint8_t op, size_t at) {
    switch (op) {
      case 0x80: {  // PROTO
        const auto v = u8();
        if (v < 2 || v > 5) fail(fmt::format("pickle protocol {} (torch.save writes 2)", v));
        break;
      }
      case 0x95: take(8); break;  // FRAME: a framing hint only
      case '(': stack_.push_back(make(Value::kMark)); break;
      case '0': pop(); break;
      case '1': pop_mark(); break;
      case '2': stack_.push_back(top()); break;
      case 'N': stack_.push_back(make(Value::kNone)); break;
      case 0x88: stack_.push_back(make_int(1, Value::kBool)); break;
      case 0x89: stack_.push_back(make_int(0, Value::kBool)); break;
      case 'J': stack_.push_back(make_int(static_cast<int32_t>(uint_le(4)))); break;
      case 'K': stack_.push_back(make_int(u8())); break;
      case 'M': stack_.push_back(make_int(static_cast<int64_t>(uint_le(2)))); break;
      case 0x8a: {  // LONG1: little-endian two's complement of n bytes
        const auto n = u8();
        if (n > 8) fail("integer wider than 64 bits");
        uint64_t v = n ? uint_le(n) : 0;
        if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);  // sign-extend
        stack_.push_back(make_int(static_cast<int64_t>(v)));
        break;
      }
      case 'G': {  // BINFLOAT, big-endian
        const auto* b = take(8);
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | b[i];
        auto* v = make(Value::kFloat);
        std::memcpy(&v->f, &bits, 8);
        stack_.push_back(v);
        break;
      }
      case 'X': stack_.push_back(make_string(bytes(uint_le(4)))); break;      // BINUNICODE
      case 0x8c: stack_.push_back(make_string(bytes(u8()))); break;           // SHORT_BINUNICODE
      case 0x8d: stack_.push_back(make_string(bytes(uint_le(8)))); break;     // BINUNICODE8
      case 'T': stack_.push_back(make_string(bytes(uint_le(4)))); break;      // BINSTRING (Python 2 str)
      case 'U': stack_.push_back(make_string(bytes(u8()))); break;            // SHORT_BINSTRING
      case 'B': stack_.push_back(make_string(bytes(uint_le(4)), Value::kBytes)); break;  // BINBYTES
      case 'C': stack_.push_back(make_string(bytes(u8()), Value::kBytes)); break;        // SHORT_BINBYTES
      case ')': stack_.push_back(tuple({})); break;
      case 't': stack_.push_back(tuple(pop_mark())); break;
      case 0x85: {
        auto* a = pop();
        stack_.push_back(tuple({a}));
        break;
      }
      case 0x86: {
        auto* b = pop();
        auto* a = pop();
        stack_.push_back(tuple({a, b}));
        break;
      }
      case 0x87: {
        auto* c = pop();
        auto* b = pop();
        auto* a = pop();
        stack_.push_back(tuple({a, b, c}));
        break;
      }
      case ']': stack_.push_back(make(Value::kList)); break;
      case 'l': {
        auto* l = make(Value::kList);
        l->items = pop_mark();
        stack_.push_back(l);
        break;
      }
      case 'a': {
        auto* v = pop();
        container(Value::kList, "APPEND")->items.push_back(v);
        break;
      }
      case 'e': {
        auto items = pop_mark();
        auto* l = container(Value::kList, "APPENDS");
        l->items.insert(l->items.end(), items.begin(), items.end());
        break;
      }
      case '}': stack_.push_back(make(Value::kDict)); break;
      case 'd': {
        auto* d = make(Value::kDict);
        set_items(d, pop_mark());
        stack_.push_back(d);
        break;
      }
      case 's': {
        auto* v = pop();
        auto* k = pop();
        set_items(container(Value::kDict, "SETITEM"), {k, v});
        break;
      }
      case 'u': {
        auto kv = pop_mark();
        set_items(container(Value::kDict, "SETITEMS"), kv);
        break;
      }
      case 'c': {
        auto module = line();
        auto name = line();
        stack_.push_back(global(module, name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        auto* name = pop();
        auto* module = pop();
        if (module->kind != Value::kString || name->kind != Value::kString) fail("STACK_GLOBAL needs two strings");
        stack_.push_back(global(module->s, name->s));
        break;
      }
      case 'R': {
        auto* args = pop();
        auto* callable = pop();
        stack_.push_back(reduce(callable, args));
        break;
      }
      case 'b': {  // BUILD: OrderedDict's state is its _metadata (format versions), not needed here
        auto* state = pop();
        auto* inst = top();
        if (inst->kind != Value::kDict || state->kind != Value::kDict)
          fail(fmt::format("BUILD on a {} (only an OrderedDict's _metadata is read)", kind_name(inst->kind)));
        break;
      }
      case 'Q': stack_.push_back(persistent_load(pop())); break;
      case 'q': memo_put(u8()); break;
      case 'r': memo_put(uint_le(4)); break;
      case 0x94: memo_put(memo_.size()); break;  // MEMOIZE
      case 'h': stack_.push_back(memo_get(u8())); break;
      case 'j': stack_.push_back(memo_get(uint_le(4))); break;
      default:
        fail(fmt::format("unsupported pickle opcode 0x{:02x} at byte {} (a state dict does not use it)", op, at));
    }
  }

  const uint8_t* p_;
  const uint8_t* end_;
  const uint8_t* begin_;
  const StorageLoader& load_;
  std::string what_;
  std::deque<Value> arena_;  // owns every value; containers point into it (cycles cannot leak)
  std::vector<Value*> stack_;
  std::map<uint64_t, Value*> memo_;
  std::map<std::string, Value*> storages_;
};

std::string key_text(const Value* k) { return k->kind == Value::kString ? k->s : std::to_string(k->i); }

bool all_tensors(const Value* dict) {
  for (size_t i = 1; i < dict->items.size(); i += 2)
    if (dict->items[i]->kind != Value::kTensor) return false;
  return true;
}

const Value* entry(const Value* dict, const std::string& key) {
  for (size_t i = 0; i < dict->items.size(); i += 2)
    if (dict->items[i]->kind == Value::kString && dict->items[i]->s == key) return dict->items[i + 1];
  return nullptr;
}

}  // namespace

TensorMap unpickle_state_dict(const void* data, size_t size, const StorageLoader& load_storage, const std::string& key,
                              const std::string& what) {
  Unpickler unpickler(static_cast<const uint8_t*>(data), size, load_storage, what);
  const Value* root = unpickler.run();
  if (root->kind != Value::kDict)
    unpickler.fail(fmt::format("holds a {}, not a state dict", kind_name(root->kind)));
  const Value* dict = root;
  std::string where;
  if (!key.empty() || !all_tensors(root)) {
    std::vector<std::string> keys;
    for (size_t i = 0; i < root->items.size(); i += 2) keys.push_back(key_text(root->items[i]));
    const Value* chosen = nullptr;
    for (const auto& k : key.empty() ? std::vector<std::string>{"state_dict", "model"} : std::vector<std::string>{key})
      if ((chosen = entry(root, k))) {
        where = " (entry '" + k + "')";
        break;
      }
    if (!chosen || chosen->kind != Value::kDict)
      unpickler.fail(fmt::format("{}; its top-level keys are [{}]: name the entry that holds the weights",
                                 key.empty() ? "holds no state dict (neither a dict of tensors nor an entry "
                                               "'state_dict' or 'model')"
                                             : "has no dict entry '" + key + "'",
                                 fmt::join(keys, ", ")));
    dict = chosen;
  }
  TensorMap out;
  for (size_t i = 0; i < dict->items.size(); i += 2) {
    const Value* k = dict->items[i];
    const Value* v = dict->items[i + 1];
    if (k->kind != Value::kString) unpickler.fail(fmt::format("state dict{} has the non-string key {}", where, k->i));
    if (v->kind != Value::kTensor)
      unpickler.fail(fmt::format("state dict{} entry '{}' is a {}, not a tensor", where, k->s, kind_name(v->kind)));
    out[k->s] = v->tensor;
  }
  return out;
}

}  // namespace detail

TensorMap read_torch_state_dict(const std::string& path, const std::string& key) {
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path + ": cannot open file");
    char magic[4] = {};
    in.read(magic, 4);
    if (in.gcount() < 4 || std::memcmp(magic, "PK\x03\x04", 4) != 0)
      throw std::runtime_error(path + ": not a zip-format torch.save file (files from PyTorch before 1.6, or "
                               "saved with _use_new_zipfile_serialization=False, are not read; re-save them "
                               "with a current PyTorch)");
  }
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    if (reader.hasRecord("constants.pkl"))
      throw std::runtime_error(path + ": a TorchScript archive (torch.jit.save), not a torch.save state dict");
    if (!reader.hasRecord("data.pkl")) throw std::runtime_error(path + ": zip archive without data.pkl");
    auto [pickle, pickle_size] = reader.getRecord("data.pkl");
    detail::StorageLoader load = [&](const std::string& storage_key, torch::Dtype dtype, int64_t numel) {
      const auto record = "data/" + storage_key;
      if (storage_key.empty() || storage_key.find('/') != std::string::npos || !reader.hasRecord(record))
        throw std::runtime_error(path + ": storage '" + storage_key + "' is not in the archive");
      auto [ptr, bytes] = reader.getRecord(record);
      const auto elem = static_cast<uint64_t>(c10::elementSize(dtype));
      if (static_cast<uint64_t>(numel) > std::numeric_limits<uint64_t>::max() / elem ||
          bytes != static_cast<uint64_t>(numel) * elem)
        throw std::runtime_error(fmt::format("{}: storage '{}' holds {} bytes, but {} elements of {} need {}", path,
                                             storage_key, bytes, numel, c10::toString(dtype),
                                             static_cast<uint64_t>(numel) * elem));
      auto t = torch::empty({numel}, torch::TensorOptions().dtype(dtype));
      if (bytes) std::memcpy(t.data_ptr(), ptr.get(), bytes);
      return t;
    };
    return detail::unpickle_state_dict(pickle.get(), pickle_size, load, key, path);
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": unreadable torch.save archive (" + e.what_without_backtrace() + ")");
  }
}

}  // namespace smp::io
