// Argument checks shared by every binding: each failure throws a JavaScript Error that names the argument.
#pragma once
#include <napi.h>
#include <cmath>
#include <cstdint>
#include <string>
#include "farm/common.h"

namespace farm::addon {

inline Napi::Error error(Napi::Env env, const std::string& msg) { return Napi::Error::New(env, msg); }

inline Napi::Object object_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsObject()) throw error(info.Env(), std::string(name) + " must be an object");
  return info[i].As<Napi::Object>();
}

// Number field of an options object; `def` when absent; throws when not a finite number.
inline double num_field(Napi::Object o, const char* key, double def, bool required = false) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) {
    if (required) throw error(o.Env(), std::string(key) + " is required");
    return def;
  }
  if (!v.IsNumber()) throw error(o.Env(), std::string(key) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throw error(o.Env(), std::string(key) + " must be finite, got " + std::to_string(d));
  return d;
}

inline int64_t int_field(Napi::Object o, const char* key, int64_t def, bool required, int64_t lo, int64_t hi) {
  double d = num_field(o, key, (double)def, required);
  if (d != std::floor(d)) throw error(o.Env(), std::string(key) + " must be an integer, got " + std::to_string(d));
  if (d < (double)lo || d > (double)hi)
    throw error(o.Env(), std::string(key) + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                             std::to_string((int64_t)d));
  return (int64_t)d;
}

inline bool bool_field(Napi::Object o, const char* key, bool def) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (!v.IsBoolean()) throw error(o.Env(), std::string(key) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

// A typed array of exactly `len` elements (len < 0: any length). Returns the data pointer.
template <typename T, napi_typedarray_type Type>
inline T* typed(Napi::Value v, const char* name, int64_t len, const char* type_name, size_t* out_len = nullptr) {
  Napi::Env env = v.Env();
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != Type)
    throw error(env, std::string(name) + " must be a " + type_name);
  auto a = v.As<Napi::TypedArrayOf<T>>();
  if (len >= 0 && (int64_t)a.ElementLength() != len)
    throw error(env, std::string(name) + " must have " + std::to_string(len) + " elements, got " +
                         std::to_string(a.ElementLength()));
  if (out_len) *out_len = a.ElementLength();
  return a.Data();
}
inline float* f32(Napi::Value v, const char* name, int64_t len = -1, size_t* n = nullptr) {
  return typed<float, napi_float32_array>(v, name, len, "Float32Array", n);
}
inline int32_t* i32(Napi::Value v, const char* name, int64_t len = -1, size_t* n = nullptr) {
  return typed<int32_t, napi_int32_array>(v, name, len, "Int32Array", n);
}
inline uint8_t* u8(Napi::Value v, const char* name, int64_t len = -1, size_t* n = nullptr) {
  return typed<uint8_t, napi_uint8_array>(v, name, len, "Uint8Array", n);
}

// Every value finite; otherwise names the first bad index.
inline void check_finite(Napi::Env env, const float* x, size_t n, const char* name) {
  for (size_t i = 0; i < n; i++)
    if (!std::isfinite(x[i]))
      throw error(env, std::string(name) + " has a non-finite value (" + std::to_string(x[i]) + ") at index " + std::to_string(i));
}

}  // namespace farm::addon
