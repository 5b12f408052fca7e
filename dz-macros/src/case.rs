//! Case conversion: a handler's `snake_case` name becomes its message variant's `CamelCase` name.

/// Converts a `snake_case` name to `CamelCase`: `do_it` → `DoIt`, `ping2` → `Ping2`.
///
/// Underscores only separate words, so runs of them, and leading or trailing ones, vanish
/// (`__do__it_` → `DoIt`); letters after the first of a word are kept as written, so a name
/// that is already `CamelCase` stays as it is. A name made only of underscores gives `""`.
pub(crate) fn snake_to_camel(snake: &str) -> String {
    let mut camel = String::with_capacity(snake.len());
    for word in snake.split('_').filter(|word| !word.is_empty()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            camel.extend(first.to_uppercase());
            camel.extend(chars);
        }
    }
    camel
}

#[cfg(test)]
mod tests {
    use super::snake_to_camel;

    #[test]
    fn one_word_gets_a_capital() {
        assert_eq!(snake_to_camel("ping"), "Ping");
    }

    #[test]
    fn each_word_gets_a_capital() {
        assert_eq!(snake_to_camel("reply_to_all"), "ReplyToAll");
    }

    #[test]
    fn underscore_runs_and_ends_vanish() {
        assert_eq!(snake_to_camel("do__it"), "DoIt");
        assert_eq!(snake_to_camel("_private"), "Private");
        assert_eq!(snake_to_camel("trailing_"), "Trailing");
    }

    #[test]
    fn digits_stay_in_place() {
        assert_eq!(snake_to_camel("ping2"), "Ping2");
        assert_eq!(snake_to_camel("ping_2"), "Ping2");
        assert_eq!(snake_to_camel("a_1_b"), "A1B");
    }

    #[test]
    fn camel_case_stays_as_written() {
        assert_eq!(snake_to_camel("DoIt"), "DoIt");
        assert_eq!(snake_to_camel("httpGet"), "HttpGet");
    }

    #[test]
    fn non_ascii_letters_get_capitals_too() {
        assert_eq!(snake_to_camel("über_straße"), "ÜberStraße");
    }

    #[test]
    fn only_underscores_give_nothing() {
        assert_eq!(snake_to_camel("__"), "");
    }
}
