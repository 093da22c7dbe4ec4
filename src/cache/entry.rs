//! One cache entry as bytes, for the shared tiers (Redis, object stores): its key, content type
//! and creation time (in milliseconds) in front of the body, so a read can check that it got the key it asked
//! for (not a digest collision) and that the entry is still within its time to live.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};

use super::{CacheKey, CachedDerivative};

// Version 2: the creation time in milliseconds (version 1 kept whole seconds, so an entry could
// expire up to a second early).
const MAGIC: &[u8; 8] = b"TIIIFC2\n";

/// `value` under `key`, made at `created`.
pub(crate) fn encode(key: &CacheKey, value: &CachedDerivative, created: SystemTime) -> Bytes {
    let millis = created
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let fields = [key.identifier(), key.as_str(), value.content_type.as_str()];
    let len = MAGIC.len() + 8 + fields.iter().map(|f| 4 + f.len()).sum::<usize>();
    let mut out = BytesMut::with_capacity(len + value.body.len());
    out.put_slice(MAGIC);
    out.put_u64(millis);
    for f in fields {
        out.put_u32(f.len() as u32);
        out.put_slice(f.as_bytes());
    }
    out.put_slice(&value.body);
    out.freeze()
}

/// The entry in `bytes`, if it is one, is `key`'s, and is younger than `ttl`.
pub(crate) fn decode(
    bytes: Bytes,
    key: &CacheKey,
    ttl: Option<Duration>,
) -> Option<CachedDerivative> {
    let rest = bytes.strip_prefix(MAGIC.as_slice())?;
    let millis = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    let mut at = MAGIC.len() + 8;
    let mut fields = [""; 3];
    for f in &mut fields {
        let n = u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize;
        *f = std::str::from_utf8(bytes.get(at + 4..at + 4 + n)?).ok()?;
        at += 4 + n;
    }
    if fields[0] != key.identifier() || fields[1] != key.as_str() {
        return None;
    }
    if let Some(ttl) = ttl {
        let created = UNIX_EPOCH + Duration::from_millis(millis);
        if SystemTime::now()
            .duration_since(created)
            .unwrap_or_default()
            > ttl
        {
            return None;
        }
    }
    let content_type = fields[2].to_owned();
    Some(CachedDerivative::new(bytes.slice(at..), content_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_other_keys_expiry_and_garbage() {
        let key = CacheKey::new("a\nb", "full/max/0/default.jpg");
        let value = CachedDerivative::new(&b"body"[..], "image/jpeg");
        let now = SystemTime::now();
        let bytes = encode(&key, &value, now);
        let back = decode(bytes.clone(), &key, None).unwrap();
        assert_eq!(
            (back.body, back.content_type),
            (value.body.clone(), value.content_type.clone())
        );
        assert!(
            decode(
                bytes.clone(),
                &CacheKey::new("a", "full/max/0/default.jpg"),
                None
            )
            .is_none()
        );
        let old = encode(&key, &value, now - Duration::from_secs(100));
        assert!(decode(old.clone(), &key, Some(Duration::from_secs(10))).is_none());
        assert!(decode(old, &key, Some(Duration::from_secs(1000))).is_some());
        for cut in 0..bytes.len() - 4 {
            assert!(decode(bytes.slice(..cut), &key, None).is_none(), "{cut}");
        }
        assert!(decode(Bytes::from_static(b"garbage"), &key, None).is_none());
    }

    /// An entry less than a second old is fresh under a one-second time to live, whatever the
    /// clock's fraction of a second (whole seconds once made it expire up to a second early).
    #[test]
    fn expiry_is_not_rounded_to_whole_seconds() {
        let key = CacheKey::new("a", "full/max/0/default.jpg");
        let value = CachedDerivative::new(&b"body"[..], "image/jpeg");
        let now = SystemTime::now();
        // The last millisecond of the previous whole second: at most a second old.
        let made = UNIX_EPOCH
            + Duration::from_secs(now.duration_since(UNIX_EPOCH).unwrap().as_secs())
            - Duration::from_millis(1);
        let bytes = encode(&key, &value, made);
        assert!(decode(bytes, &key, Some(Duration::from_secs(1))).is_some());
        let made = now - Duration::from_millis(1500);
        let bytes = encode(&key, &value, made);
        assert!(decode(bytes, &key, Some(Duration::from_secs(1))).is_none());
    }
}
