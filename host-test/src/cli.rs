//! The command-line flags that `task-host` and `task-host-temporal` share,
//! declared once so that both take them alike, with the same help. Each
//! binary adds them to its own commands with `#[command(flatten)]`.

use std::path::PathBuf;

use clap::Args;

use crate::component_path::default_component_path;
use crate::outbound::allow::AllowedHost;

/// `--component`: which component to load.
#[derive(Args, Clone, Debug)]
pub struct ComponentArg {
    /// The component to load; by default the one `make build` produces,
    /// found near this binary (the path `--help` shows).
    #[arg(long, value_name = "FILE", default_value_os_t = default_component_path())]
    pub component: PathBuf,
}

impl ComponentArg {
    /// The file given, else [`default_component_path`].
    pub fn path(self) -> PathBuf {
        self.component
    }
}

/// `--allow-host`: where a task's requests may go besides the Cloudflare
/// API.
#[derive(Args, Clone, Debug, Default)]
pub struct AllowHostArgs {
    /// Allow requests to HOST (every port) or HOST:PORT, over https or
    /// plain http, besides https://api.cloudflare.com on port 443.
    /// Repeatable.
    #[arg(long = "allow-host", value_name = "HOST[:PORT]")]
    pub allow_hosts: Vec<AllowedHost>,
}

/// `--insecure-http`: what lets a worker reach its server without TLS
/// anywhere but loopback.
#[derive(Args, Clone, Debug, Default)]
pub struct InsecureHttpArg {
    /// Reach a server that is not on loopback without TLS (plain http):
    /// its credentials and every task's input and output then cross the
    /// network in cleartext. Refused without this flag; warned about once
    /// with it.
    #[arg(long = "insecure-http")]
    pub insecure_http: bool,
}
