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
//!
//! Every request also hands the host its `request-options`, which
//! wasmtime-wasi-http 48 reads but never removes from the store's resource
//! table: one entry per request, so a task making about a thousand requests
//! (a sync that reads many pages, verification after retries) would find
//! the table full. [`free_request_options`] wraps `handle` to remove them.

use wasmtime::component::{Linker, Resource};
use wasmtime::StoreContextMut;
use wasmtime_wasi_http::p2::bindings::http::outgoing_handler::Host as OutgoingHandler;
use wasmtime_wasi_http::p2::bindings::http::types::{
    ErrorCode, FutureIncomingResponse, Host as Types, HostOutgoingRequest, Method, OutgoingRequest,
    RequestOptions,
};
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

/// The `wasi:http/outgoing-handler` instance wasi-http defines beside it.
const HANDLER_INSTANCE: &str = "wasi:http/outgoing-handler@0.2.12";

const HANDLE: &str = "handle";

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

/// Redefines `handle` of the outgoing handler in `linker`, which must
/// already hold wasi-http's: each call goes to wasmtime-wasi-http's own
/// implementation, and the options the guest handed over (which that
/// implementation only reads) are removed from the resource table after.
pub(crate) fn free_request_options<T>(linker: &mut Linker<T>) -> wasmtime::Result<()>
where
    T: WasiHttpView + 'static,
{
    linker.allow_shadowing(true);
    let defined = linker
        .instance(HANDLER_INSTANCE)
        .and_then(|mut handler| handler.func_wrap(HANDLE, handle::<T>));
    linker.allow_shadowing(false);
    defined
}

type Handled = (Result<Resource<FutureIncomingResponse>, ErrorCode>,);

fn handle<T: WasiHttpView>(
    mut store: StoreContextMut<'_, T>,
    (request, options): (Resource<OutgoingRequest>, Option<Resource<RequestOptions>>),
) -> wasmtime::Result<Handled> {
    // The guest gave the options up (`own`); the same handle, to remove them.
    let given = options
        .as_ref()
        .map(|o| Resource::<RequestOptions>::new_own(o.rep()));
    let mut http = store.data_mut().http();
    let result = OutgoingHandler::handle(&mut http, request, options);
    if let Some(given) = given {
        // Already gone only if wasmtime-wasi-http removed them itself.
        let _ = http.table.delete(given);
    }
    match result {
        Ok(future) => Ok((Ok(future),)),
        Err(e) => Ok((Err(Types::convert_error_code(&mut http, e)?),)),
    }
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
    use crate::sandbox::TaskState;
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

    #[test]
    fn handle_is_defined_where_wasi_http_defines_it() {
        let engine = Engine::default();
        let mut linker = Linker::<TaskState>::new(&engine);
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).unwrap();
        let duplicate = linker
            .instance(HANDLER_INSTANCE)
            .and_then(|mut handler| handler.func_wrap(HANDLE, handle::<TaskState>))
            .unwrap_err();
        assert!(
            duplicate.to_string().contains("defined twice"),
            "{duplicate:?}"
        );
        free_request_options(&mut linker).unwrap();
    }
}
