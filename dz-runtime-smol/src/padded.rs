//! [`Padded`]: a value alone on its cache lines.

/// Keeps what it holds on cache lines of its own (128 bytes: two lines, as x86 prefetches lines
/// in pairs), so that threads writing two neighbouring values do not slow each other down by
/// passing one line back and forth.
#[repr(align(128))]
#[derive(Debug, Default)]
pub(crate) struct Padded<T>(pub(crate) T);

#[cfg(test)]
mod tests {
    use super::Padded;

    #[test]
    fn neighbours_sit_128_bytes_apart() {
        let pair = [Padded(1u8), Padded(2u8)];
        let (a, b) = (&pair[0] as *const _ as usize, &pair[1] as *const _ as usize);
        assert_eq!(b - a, 128);
        assert_eq!(std::mem::align_of::<Padded<u64>>(), 128);
    }
}
