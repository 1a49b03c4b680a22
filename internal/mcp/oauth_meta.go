package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// challenge is one WWW-Authenticate challenge (RFC 9110 section 11.6.1).
type challenge struct {
	scheme string            // lower case
	params map[string]string // names lower case
}

// bearerChallenge returns the Bearer challenge of a response, if any.
func bearerChallenge(h http.Header) challenge {
	for _, v := range h.Values("WWW-Authenticate") {
		for _, c := range parseChallenges(v) {
			if c.scheme == "bearer" {
				return c
			}
		}
	}
	return challenge{params: map[string]string{}}
}

// parseChallenges parses a WWW-Authenticate value: schemes, each followed
// by comma-separated name=value parameters (a token or a quoted string).
func parseChallenges(v string) []challenge {
	var out []challenge
	p := 0
	skip := func(set string) {
		for p < len(v) && strings.IndexByte(set, v[p]) >= 0 {
			p++
		}
	}
	word := func() string {
		start := p
		for p < len(v) && strings.IndexByte(" \t,=\"", v[p]) < 0 {
			p++
		}
		return v[start:p]
	}
	for p < len(v) {
		skip(" \t,")
		name := word()
		skip(" \t")
		if p < len(v) && v[p] == '=' {
			p++
			skip(" \t")
			var val string
			if p < len(v) && v[p] == '"' {
				var b strings.Builder
				for p++; p < len(v) && v[p] != '"'; p++ {
					if v[p] == '\\' && p+1 < len(v) {
						p++
					}
					b.WriteByte(v[p])
				}
				p++ // the closing quote
				val = b.String()
			} else {
				val = word()
			}
			if len(out) > 0 && name != "" {
				out[len(out)-1].params[strings.ToLower(name)] = val
			}
			continue
		}
		if name == "" {
			if p < len(v) {
				p++ // a stray character: skip it
			}
			continue
		}
		out = append(out, challenge{scheme: strings.ToLower(name), params: map[string]string{}})
	}
	return out
}

// scopes are the challenge's scope parameter, split.
func (c challenge) scopes() []string { return strings.Fields(c.params["scope"]) }

// resourceMetadata is OAuth protected resource metadata (RFC 9728).
type resourceMetadata struct {
	Resource             string   `json:"resource"`
	AuthorizationServers []string `json:"authorization_servers"`
	ScopesSupported      []string `json:"scopes_supported"`
}

// authServerMetadata is authorization server metadata (RFC 8414, or
// OpenID Connect discovery).
type authServerMetadata struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	RegistrationEndpoint              string   `json:"registration_endpoint"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	ClientIDMetadataDocumentSupported bool     `json:"client_id_metadata_document_supported"`
	IssParameterSupported             bool     `json:"authorization_response_iss_parameter_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	// SigningAlgs are the JWS algorithms the token endpoint accepts for
	// private_key_jwt.
	SigningAlgs []string `json:"token_endpoint_auth_signing_alg_values_supported"`
}

// maxMetadata bounds a metadata document or token endpoint response.
const maxMetadata = 1 << 20

// isLoopback reports whether host (without port) is a loopback address
// or localhost.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// checkOAuthURL parses an URL the OAuth flow will send requests to: https,
// or http to a loopback address only; no credentials, no fragment.
func checkOAuthURL(what, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%s %q is not an absolute URL", what, clipRunes(raw, 200))
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	default:
		return nil, fmt.Errorf("%s %q must be https (plain http only to a loopback address)", what, clipRunes(raw, 200))
	}
	if u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("%s %q must not contain credentials or a fragment", what, clipRunes(raw, 200))
	}
	return u, nil
}

func sameOrigin(a, b *url.URL) bool {
	return a.Scheme == b.Scheme && strings.EqualFold(a.Hostname(), b.Hostname()) && effectivePort(a) == effectivePort(b)
}

func effectivePort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// covers reports whether the protected resource res covers the server
// URL srv: same origin, and res's path a prefix of srv's on a segment
// boundary.
func covers(res, srv *url.URL) bool {
	if !sameOrigin(res, srv) || res.RawQuery != "" {
		return false
	}
	rp := strings.TrimSuffix(res.EscapedPath(), "/")
	sp := srv.EscapedPath()
	return rp == "" || sp == rp || strings.HasPrefix(sp, rp+"/")
}

// getJSON fetches a metadata document: GET, no redirects (the client is
// built with none), 200 with a JSON body of at most maxMetadata bytes.
func (o *oauthClient) getJSON(ctx context.Context, u string, v any) (status int, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := o.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("%s answered %s", clipRunes(u, 200), resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadata+1))
	if err != nil {
		return resp.StatusCode, err
	}
	if len(data) > maxMetadata {
		return resp.StatusCode, fmt.Errorf("%s: document larger than %d bytes", clipRunes(u, 200), maxMetadata)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return resp.StatusCode, fmt.Errorf("%s: not a JSON metadata document: %v", clipRunes(u, 200), err)
	}
	return resp.StatusCode, nil
}

// discoverResource finds the server's protected resource metadata: at the
// URL of the challenge's resource_metadata (which must be on the server's
// origin), else at the path-based well-known URL, else at the root one.
// The resource it names must cover the server's URL.
func (o *oauthClient) discoverResource(ctx context.Context, ch challenge) (*resourceMetadata, *url.URL, error) {
	var candidates []string
	if rm := ch.params["resource_metadata"]; rm != "" {
		u, err := checkOAuthURL("resource_metadata", rm)
		if err != nil {
			return nil, nil, err
		}
		if !sameOrigin(u, o.serverURL) {
			return nil, nil, fmt.Errorf("resource_metadata %q is not on the server's origin", clipRunes(rm, 200))
		}
		candidates = []string{u.String()}
	} else {
		base := *o.serverURL
		base.RawQuery, base.Fragment = "", ""
		if p := strings.TrimSuffix(o.serverURL.EscapedPath(), "/"); p != "" {
			base.Path, base.RawPath = "", ""
			candidates = append(candidates, base.String()+"/.well-known/oauth-protected-resource"+p)
		}
		base.Path, base.RawPath = "/.well-known/oauth-protected-resource", ""
		candidates = append(candidates, base.String())
	}
	var errs []error
	allNotFound := true
	for _, c := range candidates {
		var md resourceMetadata
		if status, err := o.getJSON(ctx, c, &md); err != nil {
			errs = append(errs, err)
			allNotFound = allNotFound && status == http.StatusNotFound
			continue
		}
		if md.Resource == "" {
			return nil, nil, fmt.Errorf("protected resource metadata at %s names no resource", c)
		}
		res, err := url.Parse(md.Resource)
		if err != nil || !covers(res, o.serverURL) {
			return nil, nil, fmt.Errorf("protected resource metadata at %s is for %q, not for %s", c, clipRunes(md.Resource, 200), o.serverURL)
		}
		if res.Fragment != "" {
			return nil, nil, fmt.Errorf("protected resource metadata at %s: resource %q has a fragment", c, clipRunes(md.Resource, 200))
		}
		if len(md.AuthorizationServers) == 0 {
			return nil, nil, fmt.Errorf("protected resource metadata at %s names no authorization server", c)
		}
		return &md, res, nil
	}
	err := fmt.Errorf("no protected resource metadata found: %w", errors.Join(errs...))
	if allNotFound && ch.params["resource_metadata"] == "" {
		err = fmt.Errorf("%w: %w", errNoMetadata, err)
	}
	return nil, nil, err
}

// errNoMetadata marks a discovery whose every well-known URL answered 404:
// the server may predate it (MCP 2025-03-26, see legacyAuthServer).
var errNoMetadata = errors.New("not found")

// asMetadataURLs are the well-known URLs of an issuer's metadata, in the
// order MCP 2025-11-25 asks for.
func asMetadataURLs(issuer *url.URL) []string {
	base := *issuer
	base.RawQuery, base.Fragment, base.Path, base.RawPath = "", "", "", ""
	root := base.String()
	p := strings.TrimSuffix(issuer.EscapedPath(), "/")
	if p == "" {
		return []string{root + "/.well-known/oauth-authorization-server", root + "/.well-known/openid-configuration"}
	}
	return []string{
		root + "/.well-known/oauth-authorization-server" + p,
		root + "/.well-known/openid-configuration" + p,
		root + p + "/.well-known/openid-configuration",
	}
}

// discoverAuthServer fetches and checks the metadata of the authorization
// server issuer: its issuer must be the one asked for, its endpoints https
// (or loopback), and it must support the code flow with PKCE S256.
func (o *oauthClient) discoverAuthServer(ctx context.Context, issuer string) (*authServerMetadata, error) {
	return o.authServerMetadata(ctx, issuer, false)
}

// authServerMetadata is discoverAuthServer; with anyIssuerOnOrigin, the
// metadata may name any issuer on the same origin as the one asked for
// (MCP 2025-03-26 derived the metadata URL from the MCP server's origin,
// not from the issuer).
func (o *oauthClient) authServerMetadata(ctx context.Context, issuer string, anyIssuerOnOrigin bool) (*authServerMetadata, error) {
	iu, err := checkOAuthURL("authorization server", issuer)
	if err != nil {
		return nil, err
	}
	if iu.RawQuery != "" {
		return nil, fmt.Errorf("authorization server %q: an issuer has no query", clipRunes(issuer, 200))
	}
	var errs []error
	allNotFound := true
	for _, c := range asMetadataURLs(iu) {
		var md authServerMetadata
		if status, err := o.getJSON(ctx, c, &md); err != nil {
			errs = append(errs, err)
			allNotFound = allNotFound && status == http.StatusNotFound
			continue
		}
		mu, err := url.Parse(md.Issuer)
		sameIssuer := strings.TrimSuffix(md.Issuer, "/") == strings.TrimSuffix(issuer, "/")
		if !sameIssuer && !(anyIssuerOnOrigin && err == nil && sameOrigin(mu, iu)) {
			return nil, fmt.Errorf("authorization server metadata at %s names issuer %q, not %q", c, clipRunes(md.Issuer, 200), clipRunes(issuer, 200))
		}
		if _, err := checkOAuthURL("authorization_endpoint", md.AuthorizationEndpoint); err != nil {
			return nil, err
		}
		if _, err := checkOAuthURL("token_endpoint", md.TokenEndpoint); err != nil {
			return nil, err
		}
		if md.RegistrationEndpoint != "" {
			if _, err := checkOAuthURL("registration_endpoint", md.RegistrationEndpoint); err != nil {
				return nil, err
			}
		}
		if !slices.Contains(md.CodeChallengeMethodsSupported, "S256") {
			return nil, fmt.Errorf("authorization server %s does not support PKCE with S256", clipRunes(issuer, 200))
		}
		if len(md.ResponseTypesSupported) > 0 && !slices.Contains(md.ResponseTypesSupported, "code") {
			return nil, fmt.Errorf("authorization server %s does not support the authorization code flow", clipRunes(issuer, 200))
		}
		return &md, nil
	}
	err = fmt.Errorf("no metadata for authorization server %s: %w", clipRunes(issuer, 200), errors.Join(errs...))
	if allNotFound {
		err = fmt.Errorf("%w: %w", errNoMetadata, err)
	}
	return nil, err
}

// legacyAuthServer is the authorization server of an MCP server that
// predates protected resource metadata (MCP 2025-03-26): the MCP server's
// origin is its issuer, described by metadata at the origin's well-known
// URL or, when there is none, by the default endpoints /authorize, /token
// and /register on that origin. Metadata is asked of the MCP server's own
// origin only, so the server designates its authorization server here as
// its protected resource metadata does otherwise; PKCE S256 is used, as
// that revision requires.
func (o *oauthClient) legacyAuthServer(ctx context.Context) (*authServerMetadata, string, error) {
	origin := url.URL{Scheme: o.serverURL.Scheme, Host: o.serverURL.Host}
	issuer := origin.String()
	as, err := o.authServerMetadata(ctx, issuer, true)
	if err == nil {
		return as, as.Issuer, nil
	}
	if !errors.Is(err, errNoMetadata) {
		return nil, "", err
	}
	return &authServerMetadata{Issuer: issuer, AuthorizationEndpoint: issuer + "/authorize", TokenEndpoint: issuer + "/token",
		RegistrationEndpoint: issuer + "/register", CodeChallengeMethodsSupported: []string{"S256"}}, issuer, nil
}
