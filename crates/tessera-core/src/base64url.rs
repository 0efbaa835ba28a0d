//! Decoding the fixed-length base64url values Tessera makes (secrets,
//! session ids) in their one canonical text: exactly as long as the value
//! needs, no padding, and the unused low bits of the last character zero,
//! as the `base64` crate's strict decoder has it. Written out because it
//! runs on every request that carries a cookie, a refresh token or a
//! session id to look up in the revocation set, where the general decoder
//! cost several times as much.

/// Not a base64url character, in [`SEXTETS`].
const NOT_BASE64URL: u8 = 0xff;

/// Each byte's value as a base64url character.
// Built at compile time: an index out of bounds would fail the build.
#[allow(clippy::indexing_slicing)]
const SEXTETS: [u8; 256] = {
    let mut table = [NOT_BASE64URL; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut i = 0;
    while i < alphabet.len() {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// A character's sextet, or [`NOT_BASE64URL`].
#[inline]
fn sextet(c: u8) -> u8 {
    // A byte always indexes a 256-entry table.
    #[allow(clippy::indexing_slicing)]
    SEXTETS[usize::from(c)]
}

/// The `BYTES` bytes `encoded` holds, if it is their canonical base64url
/// text (`ceil(8 × BYTES / 6)` characters).
pub fn decode<const BYTES: usize>(encoded: &[u8]) -> Option<[u8; BYTES]> {
    if encoded.len() != (BYTES * 8).div_ceil(6) {
        return None;
    }
    let mut out = [0u8; BYTES];
    let mut bad = 0u8;
    // Four characters make three bytes, in fixed-size chunks the compiler
    // unrolls; the last two or three characters make the last one or two.
    let (quads, rest) = encoded.as_chunks::<4>();
    let (threes, last) = out.as_chunks_mut::<3>();
    for (quad, three) in quads.iter().zip(threes) {
        let [a, b, c, d] = quad.map(sextet);
        bad |= a | b | c | d;
        let n = u32::from(a & 0x3f) << 18
            | u32::from(b & 0x3f) << 12
            | u32::from(c & 0x3f) << 6
            | u32::from(d & 0x3f);
        *three = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
    }
    let unused = (6 * rest.len()) % 8;
    let n = rest.iter().fold(0u32, |n, c| {
        let v = sextet(*c);
        bad |= v;
        n << 6 | u32::from(v & 0x3f)
    });
    let len = last.len();
    for (i, byte) in last.iter_mut().enumerate() {
        *byte = (n >> (unused + 8 * (len - 1 - i))) as u8;
    }
    // The unused low bits carry nothing and must be zero.
    (bad & 0xc0 == 0 && n & ((1 << unused) - 1) == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    /// What the `base64` crate's strict decoder makes of `encoded`.
    fn reference<const BYTES: usize>(encoded: &[u8]) -> Option<[u8; BYTES]> {
        let mut out = vec![0u8; BYTES + 3];
        match URL_SAFE_NO_PAD.decode_slice(encoded, &mut out) {
            Ok(n) if n == BYTES => out.get(..BYTES)?.try_into().ok(),
            _ => None,
        }
    }

    /// Every byte value in every position of the text of `value`: another
    /// character, a non-canonical last one, or something that is no
    /// base64url; and a text one longer or shorter.
    fn decodes_as_the_strict_decoder<const BYTES: usize>(value: [u8; BYTES]) {
        let good = URL_SAFE_NO_PAD.encode(value).into_bytes();
        assert_eq!(decode::<BYTES>(&good), Some(value));
        for at in 0..good.len() {
            for byte in 0..=255u8 {
                let mut bad = good.clone();
                if let Some(slot) = bad.get_mut(at) {
                    *slot = byte;
                }
                assert_eq!(
                    decode::<BYTES>(&bad),
                    reference::<BYTES>(&bad),
                    "{at} {byte}"
                );
            }
        }
        let mut longer = good.clone();
        longer.push(b'A');
        assert_eq!(decode::<BYTES>(&longer), None);
        assert_eq!(
            decode::<BYTES>(good.get(..good.len() - 1).unwrap_or_default()),
            None
        );
        assert_eq!(decode::<BYTES>(b""), None);
    }

    #[test]
    fn secrets_and_ids_decode_as_the_strict_decoder_has_them() {
        let mut value = [0u8; 32];
        for round in 0..64u8 {
            for (i, b) in value.iter_mut().enumerate() {
                *b = round
                    .wrapping_mul(97)
                    .wrapping_add(i as u8)
                    .rotate_left(u32::from(round % 8));
            }
            decodes_as_the_strict_decoder::<32>(value);
            decodes_as_the_strict_decoder::<16>(
                value.first_chunk::<16>().copied().unwrap_or_default(),
            );
        }
        decodes_as_the_strict_decoder::<32>([0xff; 32]);
        decodes_as_the_strict_decoder::<16>([0; 16]);
        // A whole number of four-character groups, no shorter end.
        decodes_as_the_strict_decoder::<18>([0xa5; 18]);
    }
}
