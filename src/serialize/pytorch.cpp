// Reading PyTorch's torch.save files (the zip format, PyTorch >= 1.6) without Python and
// without trusting the file.
//
// Layout (PyTorch's torch/serialization.py and caffe2/serialize/inline_container.cc): a zip
// archive whose entries are stored uncompressed under one top-level folder (named after the
// file, or "archive"): <folder>/data.pkl, the pickled object (protocol 2), and
// <folder>/data/<key>, the raw little-endian bytes of each storage. In the pickle a tensor is
//   torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, hooks)
// where `storage` is a persistent id ('storage', torch.FloatStorage, '<key>', 'cpu', numel).
//
// The unpickler below is not Python's: it is a small stack machine that knows only the
// opcodes a state dict uses and only these callables: collections.OrderedDict,
// torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter and the typed storage
// classes. Anything else (any other global, os.system included) is an nnkit::Error; nothing is
// ever executed. Every count, length and offset is checked before use.
#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "nnkit/autograd/grad_mode.h"
#include "nnkit/ops.h"
#include "nnkit/serialize/state_dict.h"

namespace nnkit {

namespace {

[[noreturn]] void fail(const std::string& msg) { detail::throw_error("[load_pytorch] " + msg); }

uint16_t rd16(const std::string& b, size_t at) {
  return uint16_t(uint8_t(b[at])) | uint16_t(uint8_t(b[at + 1])) << 8;
}
uint32_t rd32(const std::string& b, size_t at) { return uint32_t(rd16(b, at)) | uint32_t(rd16(b, at + 2)) << 16; }
uint64_t rd64(const std::string& b, size_t at) { return uint64_t(rd32(b, at)) | uint64_t(rd32(b, at + 4)) << 32; }

// ---- zip (stored entries only, which is what torch.save writes; zip64 sizes understood) ----
struct ZipEntry {
  size_t offset = 0;  // of the data
  size_t size = 0;
};

std::map<std::string, ZipEntry> read_zip(const std::string& b) {
  auto need = [&](size_t at, size_t n, const char* what) {
    if (at > b.size() || n > b.size() - at) fail(std::string("truncated or corrupt zip archive (") + what + ")");
  };
  if (b.size() < 22 || rd32(b, 0) != 0x04034b50)
    fail("not a PyTorch zip checkpoint (no zip signature; files from torch.save before PyTorch 1.6, or with "
         "_use_new_zipfile_serialization=False, are not supported: re-save them with a current PyTorch)");
  // End of central directory: the last 22 bytes plus a comment of up to 64 KiB.
  size_t eocd = std::string::npos;
  const size_t lowest = b.size() > 22 + 65535 ? b.size() - 22 - 65535 : 0;
  for (size_t at = b.size() - 22 + 1; at-- > lowest;)
    if (rd32(b, at) == 0x06054b50) {
      eocd = at;
      break;
    }
  if (eocd == std::string::npos) fail("truncated or corrupt zip archive (no end of central directory)");
  uint64_t count = rd16(b, eocd + 10);
  uint64_t cd_offset = rd32(b, eocd + 16);
  if (cd_offset == 0xffffffffu || count == 0xffffu) {
    // zip64: the locator sits right before the end record.
    if (eocd < 20 || rd32(b, eocd - 20) != 0x07064b50) fail("corrupt zip64 archive (no locator)");
    uint64_t rec = rd64(b, eocd - 20 + 8);
    need(size_t(std::min<uint64_t>(rec, b.size())), 56, "zip64 end record");
    if (rd32(b, size_t(rec)) != 0x06064b50) fail("corrupt zip64 archive (bad end record)");
    count = rd64(b, size_t(rec) + 32);
    cd_offset = rd64(b, size_t(rec) + 48);
  }
  if (cd_offset > b.size()) fail("corrupt zip archive (central directory outside the file)");
  if (count > b.size() / 46) fail("corrupt zip archive (more entries than the file can hold)");
  std::map<std::string, ZipEntry> entries;
  size_t at = size_t(cd_offset);
  for (uint64_t i = 0; i < count; ++i) {
    need(at, 46, "central directory");
    if (rd32(b, at) != 0x02014b50) fail("corrupt zip archive (bad central directory entry)");
    const uint16_t method = rd16(b, at + 10);
    uint64_t csize = rd32(b, at + 20), usize = rd32(b, at + 24);
    const size_t name_len = rd16(b, at + 28), extra_len = rd16(b, at + 30), comment_len = rd16(b, at + 32);
    uint64_t local = rd32(b, at + 42);
    need(at + 46, name_len + extra_len + comment_len, "central directory entry");
    std::string name = b.substr(at + 46, name_len);
    // zip64 extra field: the 0xffffffff fields, in order usize, csize, local offset.
    for (size_t e = at + 46 + name_len, end = e + extra_len; e + 4 <= end;) {
      const uint16_t id = rd16(b, e), len = rd16(b, e + 2);
      if (e + 4 + len > end) fail("corrupt zip archive (bad extra field)");
      if (id == 0x0001) {
        size_t p = e + 4, q = e + 4 + len;
        auto take = [&](uint64_t& v) {
          if (v != 0xffffffffu) return;
          if (p + 8 > q) fail("corrupt zip64 extra field");
          v = rd64(b, p);
          p += 8;
        };
        take(usize);
        take(csize);
        take(local);
      }
      e += 4 + len;
    }
    at += 46 + name_len + extra_len + comment_len;
    if (method != 0) fail("entry '" + name + "' is compressed (method " + std::to_string(method) + "); torch.save writes stored entries");
    if (csize != usize) fail("entry '" + name + "' has inconsistent sizes");
    need(size_t(std::min<uint64_t>(local, b.size())), 30, "local header");
    if (rd32(b, size_t(local)) != 0x04034b50) fail("corrupt zip archive (bad local header for '" + name + "')");
    const size_t data = size_t(local) + 30 + rd16(b, size_t(local) + 26) + rd16(b, size_t(local) + 28);
    if (data > b.size() || usize > b.size() - data) fail("entry '" + name + "' extends past the end of the file");
    entries[name] = ZipEntry{data, size_t(usize)};
  }
  return entries;
}

// ---- the restricted unpickler ----
struct Object;
using ObjectPtr = std::shared_ptr<Object>;
struct StorageRef {
  std::string key;
  Dtype dtype;
  int64_t numel;
};
struct Global {
  std::string module, name;
};
struct Object {
  enum class Kind { None, Bool, Int, Float, String, Tuple, List, Dict, Global, Storage, Tensor, Mark };
  Kind kind = Kind::None;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::vector<ObjectPtr> items;                           // Tuple, List
  std::vector<std::pair<ObjectPtr, ObjectPtr>> entries;   // Dict (ordered)
  Global global;
  StorageRef storage;
  Tensor tensor;
};

// Every object of one unpickling, so that reference cycles a hostile pickle can build (a dict
// that contains itself through the memo) are broken when the unpickler goes away.
thread_local std::vector<ObjectPtr>* live_objects = nullptr;

ObjectPtr make(Object::Kind k) {
  auto o = std::make_shared<Object>();
  o->kind = k;
  if (live_objects) live_objects->push_back(o);
  return o;
}

const char* kind_name(Object::Kind k) {
  switch (k) {
    case Object::Kind::None: return "None";
    case Object::Kind::Bool: return "bool";
    case Object::Kind::Int: return "int";
    case Object::Kind::Float: return "float";
    case Object::Kind::String: return "str";
    case Object::Kind::Tuple: return "tuple";
    case Object::Kind::List: return "list";
    case Object::Kind::Dict: return "dict";
    case Object::Kind::Global: return "class";
    case Object::Kind::Storage: return "storage";
    case Object::Kind::Tensor: return "tensor";
    case Object::Kind::Mark: return "mark";
  }
  return "?";
}

bool storage_dtype(const std::string& name, Dtype& out) {
  for (const DtypeInfo& r : kDtypeTable)
    if (r.storage == name) {
      out = r.dtype;
      return true;
    }
  return false;
}

class Unpickler {
 public:
  Unpickler(const std::string& bytes, size_t begin, size_t size, const std::string& prefix,
            const std::map<std::string, ZipEntry>& zip)
      : b_(bytes), pos_(begin), end_(begin + size), prefix_(prefix), zip_(zip), outer_(live_objects) {
    live_objects = &objects_;
  }
  ~Unpickler() {
    live_objects = outer_;
    for (auto& o : objects_) {
      o->items.clear();
      o->entries.clear();
    }
  }
  Unpickler(const Unpickler&) = delete;
  Unpickler& operator=(const Unpickler&) = delete;

  ObjectPtr run() {
    constexpr size_t kMaxStack = 1 << 20, kMaxMemo = 1 << 22;
    for (;;) {
      if (stack_.size() > kMaxStack || memo_.size() > kMaxMemo) fail("pickle too large");
      const uint8_t op = byte();
      switch (op) {
        case 0x80: byte(); break;  // PROTO
        case '.': {                // STOP
          ObjectPtr r = pop();
          return r;
        }
        case '(': stack_.push_back(make(Object::Kind::Mark)); break;
        case 'N': stack_.push_back(make(Object::Kind::None)); break;
        case 0x88:
        case 0x89: {
          auto o = make(Object::Kind::Bool);
          o->b = op == 0x88;
          stack_.push_back(o);
          break;
        }
        case 'J': push_int(int32_t(rd32(b_, take(4)))); break;
        case 'K': push_int(byte()); break;
        case 'M': push_int(rd16(b_, take(2))); break;
        case 0x8a: {  // LONG1
          const size_t n = byte();
          if (n > 8) fail("integer wider than 64 bits");
          const size_t at = take(n);
          uint64_t v = 0;
          for (size_t k = 0; k < n; ++k) v |= uint64_t(uint8_t(b_[at + k])) << (8 * k);
          if (n > 0 && n < 8 && (uint8_t(b_[at + n - 1]) & 0x80)) v |= ~uint64_t(0) << (8 * n);  // sign-extend
          push_int(int64_t(v));
          break;
        }
        case 'G': {  // BINFLOAT, big-endian
          const size_t at = take(8);
          uint64_t v = 0;
          for (size_t k = 0; k < 8; ++k) v = v << 8 | uint8_t(b_[at + k]);
          auto o = make(Object::Kind::Float);
          std::memcpy(&o->f, &v, 8);
          stack_.push_back(o);
          break;
        }
        case 'X':  // BINUNICODE
        case 'T':  // BINSTRING
        case 'B': push_string(rd32(b_, take(4))); break;  // BINBYTES
        case 'U':
        case 'C':
        case 0x8c: push_string(byte()); break;  // SHORT_BINSTRING, SHORT_BINBYTES, SHORT_BINUNICODE
        case 'c': {                              // GLOBAL "module\nname\n"
          auto o = make(Object::Kind::Global);
          o->global.module = line();
          o->global.name = line();
          check_global(o->global);
          stack_.push_back(o);
          break;
        }
        case ')': stack_.push_back(make(Object::Kind::Tuple)); break;
        case ']': stack_.push_back(make(Object::Kind::List)); break;
        case '}': stack_.push_back(make(Object::Kind::Dict)); break;
        case 't': {
          auto o = make(Object::Kind::Tuple);
          o->items = pop_to_mark();
          stack_.push_back(o);
          break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {
          const size_t n = op - 0x84;
          if (stack_.size() < n) fail("malformed pickle (stack underflow)");
          auto o = make(Object::Kind::Tuple);
          o->items.assign(stack_.end() - std::ptrdiff_t(n), stack_.end());
          for (auto& it : o->items)
            if (it->kind == Object::Kind::Mark) fail("malformed pickle (mark inside a tuple)");
          stack_.resize(stack_.size() - n);
          stack_.push_back(o);
          break;
        }
        case 'a': {  // APPEND
          ObjectPtr v = pop();
          expect(top(), Object::Kind::List, "APPEND")->items.push_back(v);
          break;
        }
        case 'e': {  // APPENDS
          auto items = pop_to_mark();
          auto& l = expect(top(), Object::Kind::List, "APPENDS")->items;
          l.insert(l.end(), items.begin(), items.end());
          break;
        }
        case 's': {  // SETITEM
          ObjectPtr v = pop(), k = pop();
          set_item(top(), k, v);
          break;
        }
        case 'u': {  // SETITEMS
          auto items = pop_to_mark();
          if (items.size() % 2) fail("malformed pickle (odd SETITEMS)");
          ObjectPtr d = top();
          for (size_t k = 0; k < items.size(); k += 2) set_item(d, items[k], items[k + 1]);
          break;
        }
        case 'q': memo_put(byte()); break;
        case 'r': memo_put(rd32(b_, take(4))); break;
        case 0x94: memo_put(memo_.size()); break;  // MEMOIZE
        case 'h': stack_.push_back(memo_get(byte())); break;
        case 'j': stack_.push_back(memo_get(rd32(b_, take(4)))); break;
        case 'Q': {  // BINPERSID
          ObjectPtr pid = pop();
          stack_.push_back(persistent_load(pid));
          break;
        }
        case 'R': {  // REDUCE
          ObjectPtr args = pop(), callable = pop();
          stack_.push_back(call(callable, args));
          break;
        }
        case 0x81: {  // NEWOBJ: cls.__new__(cls, *args)
          ObjectPtr args = pop(), cls = pop();
          stack_.push_back(call(cls, args));
          break;
        }
        case 'b': {  // BUILD: only state on an OrderedDict (the state dict's _metadata), ignored
          ObjectPtr state = pop();
          (void)state;
          if (top()->kind != Object::Kind::Dict && top()->kind != Object::Kind::Tensor)
            fail(std::string("malformed pickle (BUILD on a ") + kind_name(top()->kind) + ")");
          break;
        }
        case '0': pop(); break;  // POP
        case '2': stack_.push_back(top()); break;  // DUP
        default: {
          std::ostringstream os;
          os << "pickle opcode 0x" << std::hex << int(op) << " at byte " << std::dec << (pos_ - 1)
             << " is not part of a state dict; refusing to interpret it";
          fail(os.str());
        }
      }
    }
  }

 private:
  uint8_t byte() {
    if (pos_ >= end_) fail("truncated pickle");
    return uint8_t(b_[pos_++]);
  }
  size_t take(size_t n) {
    if (n > end_ - pos_) fail("truncated pickle");
    size_t at = pos_;
    pos_ += n;
    return at;
  }
  std::string line() {
    size_t nl = b_.find('\n', pos_);
    if (nl == std::string::npos || nl >= end_ || nl - pos_ > 256) fail("malformed pickle (bad GLOBAL)");
    std::string s = b_.substr(pos_, nl - pos_);
    pos_ = nl + 1;
    return s;
  }
  void push_int(int64_t v) {
    auto o = make(Object::Kind::Int);
    o->i = v;
    stack_.push_back(o);
  }
  void push_string(size_t n) {
    auto o = make(Object::Kind::String);
    o->s = b_.substr(take(n), n);
    stack_.push_back(o);
  }
  ObjectPtr pop() {
    if (stack_.empty()) fail("malformed pickle (stack underflow)");
    ObjectPtr o = stack_.back();
    stack_.pop_back();
    if (o->kind == Object::Kind::Mark) fail("malformed pickle (unexpected mark)");
    return o;
  }
  ObjectPtr top() {
    if (stack_.empty() || stack_.back()->kind == Object::Kind::Mark) fail("malformed pickle (stack underflow)");
    return stack_.back();
  }
  std::vector<ObjectPtr> pop_to_mark() {
    size_t m = stack_.size();
    while (m > 0 && stack_[m - 1]->kind != Object::Kind::Mark) --m;
    if (m == 0) fail("malformed pickle (no mark)");
    std::vector<ObjectPtr> items(stack_.begin() + std::ptrdiff_t(m), stack_.end());
    stack_.resize(m - 1);
    return items;
  }
  static ObjectPtr expect(const ObjectPtr& o, Object::Kind k, const char* op) {
    if (o->kind != k) fail(std::string("malformed pickle (") + op + " on a " + kind_name(o->kind) + ")");
    return o;
  }
  void set_item(const ObjectPtr& d, const ObjectPtr& k, const ObjectPtr& v) {
    expect(d, Object::Kind::Dict, "SETITEM");
    for (auto& e : d->entries)
      if (e.first->kind == Object::Kind::String && k->kind == Object::Kind::String && e.first->s == k->s) {
        e.second = v;
        return;
      }
    d->entries.emplace_back(k, v);
  }
  void memo_put(size_t idx) {
    if (idx > (size_t(1) << 22)) fail("pickle memo index too large");
    if (memo_.size() <= idx) memo_.resize(idx + 1);
    memo_[idx] = top();
  }
  ObjectPtr memo_get(size_t idx) {
    if (idx >= memo_.size() || !memo_[idx]) fail("malformed pickle (unknown memo entry)");
    return memo_[idx];
  }
  void check_global(const Global& g) {
    Dtype d;
    const bool ok = (g.module == "collections" && g.name == "OrderedDict") ||
                    (g.module == "torch._utils" && (g.name == "_rebuild_tensor_v2" || g.name == "_rebuild_parameter")) ||
                    (g.module == "torch" && storage_dtype(g.name, d));
    if (ok) return;
    if (g.module == "torch" && g.name.size() > 7 && g.name.compare(g.name.size() - 7, 7, "Storage") == 0)
      fail("tensors of type " + g.name + " are not supported (nnkit has float32, float64, int64 and bool); convert "
           "them in Python before saving, e.g. {k: v.float() for k, v in sd.items()}");
    fail("the file references '" + g.module + "." + g.name +
         "', which a state dict does not contain; only state dicts saved with torch.save(model.state_dict()) "
         "are accepted, and nothing in the file is executed");
  }

  ObjectPtr persistent_load(const ObjectPtr& pid) {
    // ('storage', <storage class>, '<key>', '<location>', numel)
    if (pid->kind != Object::Kind::Tuple || pid->items.size() != 5 || pid->items[0]->kind != Object::Kind::String ||
        pid->items[0]->s != "storage" || pid->items[1]->kind != Object::Kind::Global ||
        pid->items[2]->kind != Object::Kind::String || pid->items[4]->kind != Object::Kind::Int)
      fail("malformed storage reference in the pickle");
    auto o = make(Object::Kind::Storage);
    if (!storage_dtype(pid->items[1]->global.name, o->storage.dtype))
      fail("'" + pid->items[1]->global.name + "' is not a storage type");
    o->storage.key = pid->items[2]->s;
    o->storage.numel = pid->items[4]->i;
    if (o->storage.numel < 0) fail("negative storage size");
    return o;
  }

  Tensor load_storage(const StorageRef& ref) {
    auto cached = storages_.find(ref.key);
    if (cached != storages_.end()) return cached->second;
    auto it = zip_.find(prefix_ + "data/" + ref.key);
    if (it == zip_.end()) fail("storage '" + ref.key + "' is missing from the archive");
    const size_t esize = element_size(ref.dtype);
    if (uint64_t(ref.numel) > it->second.size / esize)
      fail("storage '" + ref.key + "' claims " + std::to_string(ref.numel) + " elements but its record holds " +
           std::to_string(it->second.size) + " bytes");
    Tensor t = empty({ref.numel}, {.dtype = ref.dtype});
    if (ref.numel > 0) std::memcpy(t.raw_data(), b_.data() + it->second.offset, size_t(ref.numel) * esize);
    if (ref.dtype == kBool) {
      // Any byte other than 0/1 would be an invalid bool.
      auto* p = static_cast<uint8_t*>(t.raw_data());
      for (int64_t k = 0; k < ref.numel; ++k) p[k] = p[k] != 0;
    }
    storages_[ref.key] = t;
    return t;
  }

  static std::vector<int64_t> int_tuple(const ObjectPtr& o, const char* what) {
    if (o->kind != Object::Kind::Tuple) fail(std::string("tensor ") + what + " is not a tuple");
    std::vector<int64_t> v;
    for (auto& it : o->items) {
      if (it->kind != Object::Kind::Int) fail(std::string("tensor ") + what + " holds a non-integer");
      v.push_back(it->i);
    }
    return v;
  }

  ObjectPtr call(const ObjectPtr& callable, const ObjectPtr& args) {
    if (callable->kind != Object::Kind::Global) fail("malformed pickle (call of a non-callable)");
    if (args->kind != Object::Kind::Tuple) fail("malformed pickle (call arguments are not a tuple)");
    const Global& g = callable->global;
    const auto& a = args->items;
    if (g.name == "OrderedDict") {
      if (!a.empty()) fail("OrderedDict called with arguments");
      return make(Object::Kind::Dict);
    }
    if (g.name == "_rebuild_parameter") {
      if (a.size() < 2 || a[0]->kind != Object::Kind::Tensor) fail("malformed _rebuild_parameter call");
      return a[0];
    }
    if (g.name == "_rebuild_tensor_v2") {
      if (a.size() < 4 || a[0]->kind != Object::Kind::Storage || a[1]->kind != Object::Kind::Int)
        fail("malformed _rebuild_tensor_v2 call");
      const StorageRef& ref = a[0]->storage;
      const int64_t offset = a[1]->i;
      std::vector<int64_t> size = int_tuple(a[2], "size"), stride = int_tuple(a[3], "stride");
      if (size.size() != stride.size() || size.size() > 16) fail("tensor size and stride do not match");
      // The view must lie inside the storage: offset + sum((size-1)*stride) < numel.
      if (offset < 0) fail("negative storage offset");
      int64_t last = offset;
      bool empty_view = false;
      for (size_t d = 0; d < size.size(); ++d) {
        if (size[d] < 0 || stride[d] < 0) fail("negative tensor size or stride");
        if (size[d] == 0) empty_view = true;
      }
      if (!empty_view) {
        for (size_t d = 0; d < size.size(); ++d) {
          if (size[d] > 1 && stride[d] > (std::numeric_limits<int64_t>::max() - last) / (size[d] - 1))
            fail("tensor extent overflows");
          last += (size[d] - 1) * stride[d];
        }
        if (last >= ref.numel) fail("tensor view of storage '" + ref.key + "' reaches past its end");
        // Zero strides (an expanded view) could describe a huge tensor over a tiny storage:
        // the tensor we materialize may hold at most 16x its storage's elements (or 16 M).
        const int64_t cap = std::max<int64_t>(ref.numel * 16, int64_t(1) << 24);
        int64_t numel = 1;
        for (int64_t sz : size) {
          if (sz > cap / std::max<int64_t>(numel, 1)) fail("tensor of shape too large for its storage '" + ref.key + "'");
          numel *= sz;
        }
      }
      Tensor storage = load_storage(ref);
      auto o = make(Object::Kind::Tensor);
      o->tensor = empty_view ? empty(Shape(size), {.dtype = ref.dtype})
                             : storage.as_strided(Shape(size), Shape(stride), offset).contiguous();
      if (o->tensor.is_alias_of(storage)) o->tensor = o->tensor.clone();  // each entry owns its memory
      return o;
    }
    fail("'" + g.module + "." + g.name + "' cannot be called here");
  }

  const std::string& b_;
  size_t pos_, end_;
  std::string prefix_;
  const std::map<std::string, ZipEntry>& zip_;
  std::vector<ObjectPtr> stack_, memo_;
  std::map<std::string, Tensor> storages_;
  std::vector<ObjectPtr> objects_;
  std::vector<ObjectPtr>* outer_;
};

}  // namespace

StateDict load_pytorch_bytes(const std::string& bytes) {
  NoGradGuard no_grad;
  auto zip = read_zip(bytes);
  std::string pkl;
  for (auto& [name, e] : zip) {
    const std::string suffix = "data.pkl";
    if (name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
        std::count(name.begin(), name.end(), '/') == 1) {
      if (!pkl.empty()) fail("the archive holds more than one data.pkl");
      pkl = name;
    }
  }
  if (pkl.empty()) fail("no <name>/data.pkl in the archive: not a file written by torch.save");
  const std::string prefix = pkl.substr(0, pkl.size() - std::string("data.pkl").size());
  const ZipEntry& e = zip.at(pkl);
  Unpickler unpickler(bytes, e.offset, e.size, prefix, zip);  // owns every object until the end
  ObjectPtr root = unpickler.run();
  if (root->kind != Object::Kind::Dict)
    fail(std::string("the file holds a ") + kind_name(root->kind) +
         ", not a state dict (save model.state_dict(), not the model)");
  StateDict out;
  for (auto& [k, v] : root->entries) {
    if (k->kind != Object::Kind::String) fail("a state dict key is not a string");
    if (v->kind != Object::Kind::Tensor)
      fail("entry '" + k->s + "' is a " + kind_name(v->kind) + ", not a tensor");
    if (out.contains(k->s)) fail("duplicate key '" + k->s + "'");
    out.insert(k->s, v->tensor);
  }
  return out;
}

StateDict load_pytorch(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  NNKIT_CHECK(f.good(), "[load_pytorch] cannot open '", path, "': ", std::strerror(errno));
  std::ostringstream ss;
  ss << f.rdbuf();
  try {
    return load_pytorch_bytes(ss.str());
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " (file '" + path + "')");
  }
}

}  // namespace nnkit
