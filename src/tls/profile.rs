//! The iOS/macOS configuration profile (`/ca.crt?format=mobileconfig`) that installs the
//! appliance's CA as a root certificate. Pure.

use base64::Engine;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A UUID made from the fingerprint, so downloading the profile again replaces it.
fn uuid_from(fingerprint: &str, salt: u8) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest([fingerprint.as_bytes(), &[salt]].concat());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x50; // version 5 style (name-based)
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).hyphenated().to_string().to_uppercase()
}

/// The profile: one `com.apple.security.root` payload carrying `der`.
pub fn mobileconfig(der: &[u8], ca_name: &str, fingerprint: &str) -> String {
    let data = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = data.as_bytes().chunks(64).filter_map(|c| std::str::from_utf8(c).ok()).collect();
    let name = escape(ca_name);
    let short = &fingerprint[..fingerprint.len().min(16)];
    let (outer, inner) = (uuid_from(fingerprint, 0), uuid_from(fingerprint, 1));
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>PayloadContent</key>
	<array>
		<dict>
			<key>PayloadCertificateFileName</key>
			<string>branchd-ca.cer</string>
			<key>PayloadContent</key>
			<data>
			{data}
			</data>
			<key>PayloadDescription</key>
			<string>Trusts this branchd appliance's own certificate authority for HTTPS on the branch LAN.</string>
			<key>PayloadDisplayName</key>
			<string>{name}</string>
			<key>PayloadIdentifier</key>
			<string>branchd.ca.{short}.root</string>
			<key>PayloadType</key>
			<string>com.apple.security.root</string>
			<key>PayloadUUID</key>
			<string>{inner}</string>
			<key>PayloadVersion</key>
			<integer>1</integer>
		</dict>
	</array>
	<key>PayloadDescription</key>
	<string>SHA-256 fingerprint {fingerprint}</string>
	<key>PayloadDisplayName</key>
	<string>branchd: {name}</string>
	<key>PayloadIdentifier</key>
	<string>branchd.ca.{short}</string>
	<key>PayloadRemovalDisallowed</key>
	<false/>
	<key>PayloadType</key>
	<string>Configuration</string>
	<key>PayloadUUID</key>
	<string>{outer}</string>
	<key>PayloadVersion</key>
	<integer>1</integer>
</dict>
</plist>
"#,
        data = lines.join("\n\t\t\t"),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn profile_carries_the_certificate_and_stable_ids() {
        let fp = "ab".repeat(32);
        let a = super::mobileconfig(&[1, 2, 3, 4], "branchd <pi> CA", &fp);
        let b = super::mobileconfig(&[1, 2, 3, 4], "branchd <pi> CA", &fp);
        assert_eq!(a, b);
        assert!(a.contains("<data>\n\t\t\tAQIDBA==\n"));
        assert!(a.contains("com.apple.security.root"));
        assert!(a.contains("branchd &lt;pi&gt; CA"));
    }
}
