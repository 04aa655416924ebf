//! Bounds on guest data that `wasi:http` would otherwise keep in host memory
//! for as long as the guest likes.
//!
//! An outgoing request keeps the method the guest set. wasmtime-wasi-http
//! accepts any `method::other(name)` that is a valid HTTP token, whatever its
//! length, and keeps the name in the request resource. A guest can fill its
//! memory with one such name and set it on as many requests as
//! [`MAX_RESOURCES`](crate::MAX_RESOURCES) allows: the host would then hold
//! that many copies, far beyond [`MEMORY_LIMIT`](crate::MEMORY_LIMIT).
//! (Path and authority are already bounded by the `http` crate, header fields
//! by wasmtime-wasi-http.)
//!
//! [`limit_method_names`] replaces `[method]outgoing-request.set-method` in the
//! linker with a version that refuses long names, the way the function
//! refuses an invalid one, and hands every other call to wasmtime-wasi-http.

use wasmtime::component::{Linker, Resource};
use wasmtime::StoreContextMut;
use wasmtime_wasi_http::p2::bindings::http::types::{HostOutgoingRequest, Method, OutgoingRequest};
use wasmtime_wasi_http::WasiHttpView;

/// Longest custom method name (`method::other`) an outgoing request accepts,
/// in bytes. Real extension methods (`PURGE`, `PROPFIND`,
/// `VERSION-CONTROL`...) are far shorter; anything longer is refused without
/// being kept, so that requests cannot be used to make the host hold guest
/// data outside the guest's memory limit.
pub const MAX_METHOD_LEN: usize = 64;

/// The `wasi:http/types` instance that
/// `wasmtime_wasi_http::p2::add_only_http_to_linker_async` defines (the
/// version of the WIT wasmtime-wasi-http 48 ships). Guests that import an
/// older 0.2 version are linked to this same instance.
const TYPES_INSTANCE: &str = "wasi:http/types@0.2.12";

const SET_METHOD: &str = "[method]outgoing-request.set-method";

/// Redefines `set-method` of outgoing requests in `linker`, which must
/// already hold wasi-http's `wasi:http/types`: a custom method name longer
/// than [`MAX_METHOD_LEN`] gets the function's error result and is dropped at
/// once; any other method goes to wasmtime-wasi-http's own implementation.
pub(crate) fn limit_method_names<T>(linker: &mut Linker<T>) -> wasmtime::Result<()>
where
    T: WasiHttpView + 'static,
{
    linker.allow_shadowing(true);
    let defined = linker
        .instance(TYPES_INSTANCE)
        .and_then(|mut types| types.func_wrap(SET_METHOD, set_method::<T>));
    linker.allow_shadowing(false);
    defined
}

/// The name has been copied out of guest memory to get here; a refused one
/// is dropped on return, so at most one such copy exists per call.
fn set_method<T: WasiHttpView>(
    mut store: StoreContextMut<'_, T>,
    (request, method): (Resource<OutgoingRequest>, Method),
) -> wasmtime::Result<(Result<(), ()>,)> {
    if let Method::Other(name) = &method {
        if name.len() > MAX_METHOD_LEN {
            return Ok((Err(()),));
        }
    }
    let mut http = store.data_mut().http();
    HostOutgoingRequest::set_method(&mut http, request, method).map(|result| (result,))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TaskState;
    use wasmtime::Engine;

    /// The shadowed function must land in the instance wasi-http defined: in
    /// any other (a newer WIT version, say) it would go unused. Without
    /// shadowing, defining it again there is refused as a duplicate.
    #[test]
    fn set_method_is_defined_where_wasi_http_defines_it() {
        let engine = Engine::default();
        let mut linker = Linker::<TaskState>::new(&engine);
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).unwrap();
        let duplicate = linker
            .instance(TYPES_INSTANCE)
            .and_then(|mut types| types.func_wrap(SET_METHOD, set_method::<TaskState>))
            .unwrap_err();
        assert!(
            duplicate.to_string().contains("defined twice"),
            "{duplicate:?}"
        );
        limit_method_names(&mut linker).unwrap();
    }
}
