//! A component of Spin's first SDK generation in miniature: it imports the unversioned
//! `fermyon:spin/config` interface (as spin-sdk 1.x/2.x components did; the WIT below is that
//! interface as the `spin-sdk` 3.1.1 crate ships it in `wit/deps/spin@unversioned`). This host
//! does not provide it, so `tessera check` must name it (tests/spin_apps.rs).

wit_bindgen::generate!({
    inline: "
        package fermyon:spin;

        interface config {
          get-config: func(key: string) -> result<string, error>;

          variant error {
              provider(string),
              invalid-key(string),
              invalid-schema(string),
              other(string),
          }
        }

        world spin1-config {
          import config;
          export lookup: func(key: string) -> string;
        }
    ",
    world: "fermyon:spin/spin1-config",
});

struct Component;

impl Guest for Component {
    fn lookup(key: String) -> String {
        match fermyon::spin::config::get_config(&key) {
            Ok(v) => v,
            Err(e) => format!("{e:?}"),
        }
    }
}

export!(Component);
