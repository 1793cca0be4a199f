//! The text of each email, rendered when it is sent from what was queued with it. Plain text
//! with short lines, so every client shows it as written.

use serde_json::Value;

use super::EmailKind;

pub struct Rendered {
    pub subject: String,
    pub body: String,
}

pub fn render(kind: EmailKind, data: &Value, app_url: &str) -> Rendered {
    let number = |key: &str| data.get(key).and_then(Value::as_i64).unwrap_or_default();
    let text = |key: &str| {
        data.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    match kind {
        EmailKind::Welcome => {
            let name = text("name");
            let greeting = if name.trim().is_empty() {
                "Hello,".to_owned()
            } else {
                format!("Hello {},", one_line(&name))
            };
            Rendered {
                subject: "Welcome to AI Calling".into(),
                body: format!(
                    "{greeting}\n\nyour account is ready, with {} free credits\n\
                     (one credit is one started minute of calls).\n\n\
                     Create your first agent: {app_url}/agents\n",
                    number("credits")
                ),
            }
        }
        EmailKind::Receipt => {
            let amount = money(number("amount"), &text("currency"));
            Rendered {
                subject: format!("Receipt: {} credits", number("credits")),
                body: format!(
                    "Thank you for your purchase.\n\n\
                     Package: {}\nCredits: {}\nPaid: {amount}\nPurchase: {}\n\
                     Balance now: {} credits\n\nHistory: {app_url}/billing\n",
                    one_line(&text("package_name")),
                    number("credits"),
                    text("purchase_id"),
                    number("balance"),
                ),
            }
        }
        EmailKind::LowCredit => Rendered {
            subject: "Your call credits are running low".into(),
            body: format!(
                "Your balance is {} credits, below {}.\n\
                 Calls stop when it reaches zero.\n\n\
                 Buy credits: {app_url}/billing\n",
                number("balance"),
                number("threshold"),
            ),
        },
    }
}

/// Names come from users: no line breaks may reach a header-like position in the text.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(120)
        .collect()
}

/// Currencies Stripe counts in whole units (no cents).
const ZERO_DECIMAL: &[&str] = &[
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf",
];

pub fn money(minor: i64, currency: &str) -> String {
    let code = currency.to_uppercase();
    if ZERO_DECIMAL.contains(&currency) {
        return format!("{minor} {code}");
    }
    let sign = if minor < 0 { "-" } else { "" };
    let minor = minor.unsigned_abs();
    format!("{sign}{}.{:02} {code}", minor / 100, minor % 100)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn money_uses_the_currency_minor_unit() {
        assert_eq!(money(1_000, "usd"), "10.00 USD");
        assert_eq!(money(4_505, "eur"), "45.05 EUR");
        assert_eq!(money(500, "jpy"), "500 JPY");
        assert_eq!(money(-5, "usd"), "-0.05 USD");
    }

    #[test]
    fn hostile_names_stay_on_one_line() {
        let mail = render(
            EmailKind::Welcome,
            &json!({"name": "Eve\r\nBcc: all@example.com", "credits": 15}),
            "https://app.example",
        );
        assert!(mail.body.starts_with("Hello Eve  Bcc: all@example.com,\n"));
        assert!(mail.body.contains("15 free credits"));
    }

    #[test]
    fn receipt_and_warning_carry_their_figures() {
        let receipt = render(
            EmailKind::Receipt,
            &json!({"package_name": "Starter", "credits": 100, "amount": 1000, "currency": "usd",
                    "purchase_id": "p1", "balance": 115}),
            "https://app.example",
        );
        assert_eq!(receipt.subject, "Receipt: 100 credits");
        assert!(receipt.body.contains("Paid: 10.00 USD"));
        assert!(receipt.body.contains("Balance now: 115 credits"));
        let low = render(
            EmailKind::LowCredit,
            &json!({"balance": 4, "threshold": 5}),
            "https://app.example",
        );
        assert!(low.body.contains("Your balance is 4 credits, below 5."));
    }
}
