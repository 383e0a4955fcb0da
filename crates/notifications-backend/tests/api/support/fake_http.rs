//! A fake HTTP service on 127.0.0.1, for what the backend calls out to (Slack, webhooks, a
//! Backstage catalog, JWKS): the routes a test registers, on one worker. It stops when dropped.

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};

pub struct FakeHttp {
    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub url: String,
    handle: ServerHandle,
}

impl FakeHttp {
    /// Serves what `routes` registers (state goes in with `app_data`).
    pub fn start(routes: impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static) -> Self {
        let server = HttpServer::new(move || App::new().configure(routes.clone()))
            .workers(1)
            .disable_signals()
            .shutdown_timeout(0)
            .bind("127.0.0.1:0")
            .expect("bind a loopback port");
        let url = format!("http://{}", server.addrs()[0]);
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { url, handle }
    }
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        // The stop command is sent on call; nobody needs to wait for it.
        drop(self.handle.stop(false));
    }
}
