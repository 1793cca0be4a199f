//! The little XML S3 speaks to us: one element's text out of an answer (an upload id, an
//! error's code), and text escaped into a request body.

/// The text of the first `<tag>` element of `document`, entities decoded.
pub(super) fn text_of(document: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = document.find(&open)? + open.len();
    let end = start + document[start..].find(&format!("</{tag}>"))?;
    Some(unescape(&document[start..end]))
}

fn unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    text.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#34;", "\"")
        .replace("&amp;", "&")
}

pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_element_and_decodes_its_entities() {
        let answer = r#"<?xml version="1.0" encoding="UTF-8"?>
<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>b</Bucket><Key>a&amp;b</Key><UploadId>VXBsb2FkIElE.x-_~</UploadId></InitiateMultipartUploadResult>"#;
        assert_eq!(
            text_of(answer, "UploadId").as_deref(),
            Some("VXBsb2FkIElE.x-_~")
        );
        assert_eq!(text_of(answer, "Key").as_deref(), Some("a&b"));
        assert_eq!(text_of(answer, "Code"), None);
        let error = "<Error><Code>NoSuchKey</Code><Message>The key &quot;k&quot; does not exist</Message></Error>";
        assert_eq!(text_of(error, "Code").as_deref(), Some("NoSuchKey"));
        assert_eq!(
            text_of(error, "Message").as_deref(),
            Some("The key \"k\" does not exist")
        );
        assert_eq!(unescape("&amp;lt;"), "&lt;", "decoded once");
    }

    #[test]
    fn escapes_what_text_cannot_hold() {
        assert_eq!(escape("\"etag\"<&>"), "\"etag\"&lt;&amp;&gt;");
    }
}
