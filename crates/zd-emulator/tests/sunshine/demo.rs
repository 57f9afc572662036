//! A Sunshine emulator with the demo app, shared by the Sunshine test files.

use zd_emulator::sunshine::{self as sun, SunshineConfig, SunshineServer};

use super::client::{Api, basic};

/// A Sunshine emulator with the demo app, and the app key's credentials.
pub(crate) struct Demo {
    _server: SunshineServer,
    pub(crate) api: Api,
    /// The `Authorization` value of the demo app's key.
    pub(crate) app_key: String,
    /// `/v2/apps/{demo app}`.
    pub(crate) app: String,
}

impl Demo {
    pub(crate) async fn start() -> Self {
        let server = SunshineServer::start(SunshineConfig::default())
            .await
            .unwrap();
        Self {
            api: Api::new(server.base_url()),
            app_key: basic(sun::DEMO_APP_KEY_ID, sun::DEMO_APP_KEY_SECRET),
            app: format!("/v2/apps/{}", sun::DEMO_APP_ID),
            _server: server,
        }
    }
}
