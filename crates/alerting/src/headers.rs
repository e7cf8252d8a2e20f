//! Read-only access to request headers, whatever the adapter holds them in.

/// Header lookup by name, ASCII case-insensitive (HTTP header names are).
pub trait Headers {
    /// The first value of `name`, if present and valid UTF-8.
    fn header(&self, name: &str) -> Option<&str>;
}

impl<K: AsRef<str>, V: AsRef<[u8]>> Headers for [(K, V)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v.as_ref()).ok())
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> Headers for Vec<(K, V)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

/// spin-sdk's requests are `http::Request`s; `HeaderMap` lookups are already case-insensitive.
impl Headers for http::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name)?.to_str().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive_and_first_wins() {
        let h = vec![
            ("Webhook-Id".to_string(), b"a".to_vec()),
            ("webhook-id".to_string(), b"b".to_vec()),
            ("bin".to_string(), vec![0xff]),
        ];
        assert_eq!(h.header("WEBHOOK-ID"), Some("a"));
        assert_eq!(h.header("bin"), None);
        assert_eq!(h.header("other"), None);
        let s: &[(&str, &str)] = &[("X-Hub-Signature-256", "sha256=00")];
        assert_eq!(s.header("x-hub-signature-256"), Some("sha256=00"));
    }

    #[test]
    fn header_map() {
        let mut map = http::HeaderMap::new();
        map.insert("webhook-id", http::HeaderValue::from_static("msg_1"));
        assert_eq!(Headers::header(&map, "Webhook-ID"), Some("msg_1"));
        assert_eq!(Headers::header(&map, "bad name"), None);
    }
}
