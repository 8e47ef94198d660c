// A per-function table of device implementations, in the spirit of mmcv's
// pytorch_device_registry.hpp.
//
// Each device-agnostic `<op>_impl` function owns one registry (the template
// is keyed by the function's address). Device-specific sources register
// their launcher with REGISTER_DEVICE_IMPL(<op>_impl, CPU|CUDA, launcher), and
// `<op>_impl` forwards its arguments with DISPATCH_DEVICE_IMPL(<op>_impl,
// args...), which picks the launcher of the device the tensor arguments live
// on. A device-specific source is the only place that references its
// launcher, so a CPU-only build links without any CUDA symbol.
#ifndef MMVIS_PYTORCH_DEVICE_REGISTRY_HPP
#define MMVIS_PYTORCH_DEVICE_REGISTRY_HPP

#include <torch/extension.h>

#include <array>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace mmvis {

template <typename F, F f>
class DeviceRegistry;

template <typename Ret, typename... Args, Ret (*f)(Args...)>
class DeviceRegistry<Ret (*)(Args...), f> {
 public:
  using FunctionType = Ret (*)(Args...);
  static constexpr int kNumDeviceTypes = c10::COMPILE_TIME_MAX_DEVICE_TYPES;

  static DeviceRegistry& instance() {
    static DeviceRegistry registry;
    return registry;
  }

  void Register(at::DeviceType device, FunctionType function) {
    functions_[static_cast<int>(device)] = function;
  }

  FunctionType Find(at::DeviceType device) const {
    return functions_[static_cast<int>(device)];
  }

  // Comma-separated device types that have an implementation, for errors.
  std::string Registered() const {
    std::ostringstream names;
    for (int i = 0; i < kNumDeviceTypes; ++i) {
      if (functions_[i] != nullptr) {
        names << (names.tellp() > 0 ? ", " : "")
              << c10::DeviceTypeName(static_cast<at::DeviceType>(i), true);
      }
    }
    return names.tellp() > 0 ? names.str() : std::string("none");
  }

 private:
  DeviceRegistry() { functions_.fill(nullptr); }
  std::array<FunctionType, kNumDeviceTypes> functions_;
};

// Splits the stringified argument list of DISPATCH_DEVICE_IMPL into names.
inline std::vector<std::string> SplitArgNames(const char* joined) {
  std::vector<std::string> names;
  std::string current;
  for (const char* c = joined; *c != '\0'; ++c) {
    if (*c == ',') {
      names.push_back(current);
      current.clear();
    } else if (*c != ' ') {
      current.push_back(*c);
    }
  }
  names.push_back(current);
  return names;
}

// Records the device of one argument; non-tensor arguments are skipped.
template <typename T>
void CollectDevice(const std::vector<std::string>& names, size_t index,
                   const T& arg, std::optional<at::Device>* device,
                   std::string* device_owner) {
  if constexpr (std::is_same_v<std::decay_t<T>, at::Tensor>) {
    if (!arg.defined()) return;
    const std::string& name =
        index < names.size() ? names[index] : std::to_string(index);
    if (!device->has_value()) {
      *device = arg.device();
      *device_owner = name;
    } else {
      TORCH_CHECK(arg.device() == device->value(), name, " is on ",
                  arg.device(), " but ", *device_owner, " is on ",
                  device->value(), "; all tensors must be on one device");
    }
  }
}

// The one device all tensor arguments share; raises if they disagree.
template <typename... Args>
at::Device CommonDevice(const char* key_name, const char* arg_names,
                        const Args&... args) {
  const std::vector<std::string> names = SplitArgNames(arg_names);
  std::optional<at::Device> device;
  std::string device_owner;
  size_t index = 0;
  (CollectDevice(names, index++, args, &device, &device_owner), ...);
  TORCH_CHECK(device.has_value(), key_name, ": got no tensor argument");
  return device.value();
}

template <typename Registry, typename... Args>
auto Dispatch(const Registry& registry, const char* key_name,
              const char* arg_names, Args&&... args) {
  const at::Device device = CommonDevice(key_name, arg_names, args...);
  auto function = registry.Find(device.type());
  TORCH_CHECK(function != nullptr, key_name,
              ": no implementation for device type ",
              c10::DeviceTypeName(device.type(), true),
              " in this build of mmvis_msts._ext (implemented for: ",
              registry.Registered(), ")");
  return function(std::forward<Args>(args)...);
}

}  // namespace mmvis

#define MMVIS_REGISTRY_CONCAT_(a, b) a##b
#define MMVIS_REGISTRY_CONCAT(a, b) MMVIS_REGISTRY_CONCAT_(a, b)

#define DEVICE_REGISTRY(key) mmvis::DeviceRegistry<decltype(&(key)), key>

// Registers `value` as the implementation of `key` for `device` (CPU, CUDA).
#define REGISTER_DEVICE_IMPL(key, device, value)                            \
  static const bool MMVIS_REGISTRY_CONCAT(key##_##device##_registered_,     \
                                          __LINE__) = [] {                  \
    DEVICE_REGISTRY(key)::instance().Register(at::k##device, value);        \
    return true;                                                            \
  }()

// Calls the implementation of `key` for the device of the tensor arguments.
#define DISPATCH_DEVICE_IMPL(key, ...)                                      \
  mmvis::Dispatch(DEVICE_REGISTRY(key)::instance(), #key, #__VA_ARGS__,     \
                  __VA_ARGS__)

#endif  // MMVIS_PYTORCH_DEVICE_REGISTRY_HPP
