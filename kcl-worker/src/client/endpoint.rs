//! Which Kinesis endpoint to call, by the AWS conventions: an explicit endpoint (flag or
//! configuration) first, then `AWS_ENDPOINT_URL_KINESIS`, then `AWS_ENDPOINT_URL`, then the
//! regional AWS endpoint `https://kinesis.{region}.amazonaws.com`. Setting
//! `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true` makes the two variables ignored, as in the SDKs.

/// The service-specific endpoint variable of Kinesis.
pub const KINESIS_ENDPOINT_VAR: &str = "AWS_ENDPOINT_URL_KINESIS";
/// The endpoint variable of every AWS service.
pub const GLOBAL_ENDPOINT_VAR: &str = "AWS_ENDPOINT_URL";
/// The variable that turns the two endpoint variables off.
pub const IGNORE_ENDPOINTS_VAR: &str = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS";

/// Where an endpoint came from (for logs and error messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointSource {
    /// Given explicitly (a flag or the configuration).
    Explicit,
    /// `AWS_ENDPOINT_URL_KINESIS`.
    KinesisVariable,
    /// `AWS_ENDPOINT_URL`.
    GlobalVariable,
    /// The regional AWS endpoint.
    Regional,
}

/// The endpoint to call and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedEndpoint {
    /// The endpoint URL.
    pub url: String,
    /// Where it came from.
    pub source: EndpointSource,
}

/// Resolves the Kinesis endpoint for `region` from `explicit` and the process environment.
pub fn resolve_endpoint(explicit: Option<&str>, region: &str) -> ResolvedEndpoint {
    resolve_endpoint_with(explicit, region, |name| std::env::var(name).ok())
}

/// [`resolve_endpoint`] with the environment given as a lookup function. Empty values count
/// as unset.
pub fn resolve_endpoint_with(
    explicit: Option<&str>,
    region: &str,
    env: impl Fn(&str) -> Option<String>,
) -> ResolvedEndpoint {
    let set = |value: Option<String>| value.filter(|text| !text.trim().is_empty());
    if let Some(url) = explicit.filter(|text| !text.trim().is_empty()) {
        return ResolvedEndpoint {
            url: url.to_owned(),
            source: EndpointSource::Explicit,
        };
    }
    let ignore_variables = set(env(IGNORE_ENDPOINTS_VAR))
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"));
    if !ignore_variables {
        if let Some(url) = set(env(KINESIS_ENDPOINT_VAR)) {
            return ResolvedEndpoint {
                url,
                source: EndpointSource::KinesisVariable,
            };
        }
        if let Some(url) = set(env(GLOBAL_ENDPOINT_VAR)) {
            return ResolvedEndpoint {
                url,
                source: EndpointSource::GlobalVariable,
            };
        }
    }
    ResolvedEndpoint {
        url: regional_endpoint(region),
        source: EndpointSource::Regional,
    }
}

/// The AWS Kinesis endpoint of `region` (`.amazonaws.com.cn` in the China regions).
pub fn regional_endpoint(region: &str) -> String {
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://kinesis.{region}.{domain}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_precedence() {
        const FLAG: &str = "http://flag:1";
        const KINESIS: &str = "http://kinesis-var:2";
        const GLOBAL: &str = "http://global-var:3";
        // (explicit, AWS_ENDPOINT_URL_KINESIS, AWS_ENDPOINT_URL, ignore, region, expected, source)
        type Case = (
            Option<&'static str>,
            Option<&'static str>,
            Option<&'static str>,
            Option<&'static str>,
            &'static str,
            &'static str,
            EndpointSource,
        );
        #[rustfmt::skip]
        let cases: &[Case] = &[
            (Some(FLAG), Some(KINESIS), Some(GLOBAL), None, "us-east-1", FLAG, EndpointSource::Explicit),
            (Some(FLAG), None, None, None, "us-east-1", FLAG, EndpointSource::Explicit),
            (None, Some(KINESIS), Some(GLOBAL), None, "us-east-1", KINESIS, EndpointSource::KinesisVariable),
            (None, None, Some(GLOBAL), None, "us-east-1", GLOBAL, EndpointSource::GlobalVariable),
            (None, Some(""), Some(GLOBAL), None, "us-east-1", GLOBAL, EndpointSource::GlobalVariable),
            (Some(""), None, Some(GLOBAL), None, "us-east-1", GLOBAL, EndpointSource::GlobalVariable),
            (None, None, None, None, "eu-west-1", "https://kinesis.eu-west-1.amazonaws.com", EndpointSource::Regional),
            (None, None, None, None, "cn-north-1", "https://kinesis.cn-north-1.amazonaws.com.cn", EndpointSource::Regional),
            (None, Some(KINESIS), Some(GLOBAL), Some("true"), "ap-south-1", "https://kinesis.ap-south-1.amazonaws.com", EndpointSource::Regional),
            (None, Some(KINESIS), None, Some("TRUE"), "us-west-2", "https://kinesis.us-west-2.amazonaws.com", EndpointSource::Regional),
            (None, Some(KINESIS), None, Some("false"), "us-west-2", KINESIS, EndpointSource::KinesisVariable),
            (Some(FLAG), Some(KINESIS), None, Some("true"), "us-west-2", FLAG, EndpointSource::Explicit),
        ];
        for (index, (explicit, kinesis, global, ignore, region, url, source)) in
            cases.iter().enumerate()
        {
            let env = |name: &str| {
                let value = match name {
                    KINESIS_ENDPOINT_VAR => *kinesis,
                    GLOBAL_ENDPOINT_VAR => *global,
                    IGNORE_ENDPOINTS_VAR => *ignore,
                    _ => None,
                };
                value.map(str::to_owned)
            };
            let resolved = resolve_endpoint_with(*explicit, region, env);
            assert_eq!(resolved.url, *url, "case {index}");
            assert_eq!(resolved.source, *source, "case {index}");
        }
    }
}
