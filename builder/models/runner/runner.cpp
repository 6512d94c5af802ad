// builder's verify runner: load a lite-interpreter model with the PyTorch build under test,
// run forward on tensors read from a file, write the output tensors to a file.
//
//   runner MODEL.ptl INPUTS OUTPUTS [TRACE]
//
// With TRACE, every dispatcher operator called while loading the model and running forward is recorded
// through a RecordFunction callback (as the release's own torch/csrc/jit/mobile/model_tracer does) and
// written to TRACE, one "ns::name.overload" per line: the operators the root operators call.
//
// Tensor files ("builder tensor files", read and written by builder/models/verify.py):
//   BUILDER-TENSORS 1\n
//   <count>\n
//   then per tensor: <dtype> <ndim> <size0> ... <sizeN-1>\n followed by the raw little-endian
//   contiguous data (numel * element size bytes). dtype: f32 f64 i32 i64 u8 i8 bool.
//
// Exit codes: 0 ok, 2 usage, 3 load failed, 4 forward failed, 5 tensor file I/O.
// Errors go to stderr as one "builder-runner: <stage> failed: <libtorch message>" block.
// C++14, and only APIs present in PyTorch 1.13.1's install (torch/csrc/jit/mobile/import.h).
#include <ATen/ATen.h>
#include <ATen/record_function.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/jit/mobile/import.h>
#include <torch/csrc/jit/mobile/module.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

const char kMagic[] = "BUILDER-TENSORS 1";

struct DTypeTag {
  const char* tag;
  at::ScalarType type;
};

const DTypeTag kDTypes[] = {
    {"f32", at::kFloat}, {"f64", at::kDouble}, {"i32", at::kInt}, {"i64", at::kLong},
    {"u8", at::kByte},   {"i8", at::kChar},    {"bool", at::kBool},
};

struct IoError : std::runtime_error {
  explicit IoError(const std::string& what) : std::runtime_error(what) {}
};

at::ScalarType type_of(const std::string& tag) {
  for (const auto& d : kDTypes) {
    if (tag == d.tag) return d.type;
  }
  throw IoError("unknown dtype tag '" + tag + "'");
}

const char* tag_of(at::ScalarType type) {
  for (const auto& d : kDTypes) {
    if (type == d.type) return d.tag;
  }
  throw std::runtime_error(std::string("output dtype not supported: ") + c10::toString(type));
}

struct Buffer {
  std::vector<char> bytes;
  std::vector<int64_t> sizes;
  at::ScalarType type;
};

std::vector<Buffer> read_tensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open " + path);
  std::string line;
  if (!std::getline(in, line) || line != kMagic) throw IoError(path + ": not a builder tensor file");
  if (!std::getline(in, line)) throw IoError(path + ": truncated header");
  const long count = std::stol(line);
  std::vector<Buffer> buffers;
  for (long i = 0; i < count; ++i) {
    if (!std::getline(in, line)) throw IoError(path + ": truncated header");
    std::istringstream fields(line);
    std::string tag;
    long ndim = 0;
    fields >> tag >> ndim;
    Buffer buffer;
    buffer.type = type_of(tag);
    int64_t numel = 1;
    for (long d = 0; d < ndim; ++d) {
      int64_t size = 0;
      fields >> size;
      buffer.sizes.push_back(size);
      numel *= size;
    }
    if (!fields) throw IoError(path + ": bad tensor header '" + line + "'");
    buffer.bytes.resize(static_cast<size_t>(numel) * c10::elementSize(buffer.type));
    in.read(buffer.bytes.data(), static_cast<std::streamsize>(buffer.bytes.size()));
    if (!in) throw IoError(path + ": truncated data");
    buffers.push_back(std::move(buffer));
  }
  return buffers;
}

void collect(const c10::IValue& value, std::vector<at::Tensor>* out) {
  if (value.isTensor()) {
    out->push_back(value.toTensor());
  } else if (value.isTuple()) {
    for (const auto& element : value.toTuple()->elements()) collect(element, out);
  } else if (value.isList()) {
    const c10::List<c10::IValue> list = value.toList();
    for (size_t i = 0; i < list.size(); ++i) collect(list.get(i), out);
  } else {
    throw std::runtime_error("model output holds a " + value.tagKind() + ", not tensors");
  }
}

void write_tensors(const std::string& path, const std::vector<at::Tensor>& tensors) {
  std::ofstream out(path, std::ios::binary);
  if (!out) throw IoError("cannot write " + path);
  out << kMagic << "\n" << tensors.size() << "\n";
  for (const auto& original : tensors) {
    const at::Tensor t = original.is_contiguous() ? original : original.contiguous();
    out << tag_of(t.scalar_type()) << " " << t.dim();
    for (const auto size : t.sizes()) out << " " << size;
    out << "\n";
    const size_t nbytes = static_cast<size_t>(t.numel()) * c10::elementSize(t.scalar_type());
    out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(nbytes));
  }
  if (!out) throw IoError("cannot write " + path);
}

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

int fail(const std::string& stage, const char* what, int code) {
  std::cerr << "builder-runner: " << stage << " failed: " << what << std::endl;
  return code;
}

std::mutex g_traced_mutex;
std::set<std::string> g_traced;

std::unique_ptr<at::ObserverContext> record_op(const at::RecordFunction& fn) {
  const c10::optional<c10::OperatorName> op = fn.operator_name();
  if (op.has_value()) {
    std::lock_guard<std::mutex> lock(g_traced_mutex);
    g_traced.insert(c10::toString(*op));
  }
  return nullptr;
}

void write_trace(const std::string& path) {
  std::ofstream out(path);
  for (const auto& name : g_traced) out << name << "\n";
  if (!out) throw IoError("cannot write " + path);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    std::cerr << "usage: " << argv[0] << " MODEL.ptl INPUTS OUTPUTS [TRACE]" << std::endl;
    return 2;
  }
  std::string stage = "reading inputs";
  int code = 5;
  try {
    std::vector<Buffer> buffers = read_tensors(argv[2]);
    c10::InferenceMode guard;
    if (argc == 5) {
      at::addGlobalCallback(at::RecordFunctionCallback(&record_op).scopes({at::RecordScope::FUNCTION}));
    }
    stage = "load";
    code = 3;
    auto start = std::chrono::steady_clock::now();
    torch::jit::mobile::Module module = torch::jit::_load_for_mobile(argv[1]);
    const double load_ms = ms_since(start);
    stage = "forward";
    code = 4;
    std::vector<c10::IValue> inputs;
    for (auto& b : buffers) {
      inputs.emplace_back(at::from_blob(b.bytes.data(), b.sizes, at::TensorOptions().dtype(b.type)));
    }
    start = std::chrono::steady_clock::now();
    const c10::IValue result = module.forward(inputs);
    const double forward_ms = ms_since(start);
    std::vector<at::Tensor> outputs;
    collect(result, &outputs);
    stage = "writing outputs";
    code = 5;
    write_tensors(argv[3], outputs);
    if (argc == 5) write_trace(argv[4]);
    std::cout << "load_ms=" << load_ms << " forward_ms=" << forward_ms << " outputs=" << outputs.size()
              << std::endl;
    return 0;
  } catch (const IoError& e) {
    return fail(stage, e.what(), 5);
  } catch (const c10::Error& e) {
    return fail(stage, e.what_without_backtrace(), code);
  } catch (const std::exception& e) {
    return fail(stage, e.what(), code);
  }
}
