//! Code generated from `wit/world.wit`; nothing hand-written lives here.
//! The wasi interfaces map onto the `wasi` crate so there is one set of
//! wasi types in the component.

wit_bindgen::generate!({
    path: "wit",
    world: "allow-policies-batch",
    with: {
        "wasi:http/outgoing-handler@0.2.12": wasi::http::outgoing_handler,
        "wasi:http/types@0.2.12": wasi::http::types,
        "wasi:io/poll@0.2.12": wasi::io::poll,
        "wasi:io/streams@0.2.12": wasi::io::streams,
        "wasi:io/error@0.2.12": wasi::io::error,
        "wasi:clocks/monotonic-clock@0.2.12": wasi::clocks::monotonic_clock,
        "wasi:clocks/wall-clock@0.2.12": wasi::clocks::wall_clock,
    },
});
