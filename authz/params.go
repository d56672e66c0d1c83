package authz

import (
	"net/http"
	"net/url"
	"unicode"
	"unicode/utf8"

	"github.com/ory/fosite"
)

// Request-parameter hygiene, applied before anything reads a parameter
// (fosite, the store, Postgres): no OAuth2 or OpenID Connect parameter holds
// a control character, and every one is UTF-8, so a NUL that jsonb or text
// would refuse with a 500 is the client's invalid_request; and no parameter
// appears twice (RFC 6749 §3.1 and §3.2: "MUST NOT be included more than
// once"), so that fosite reading the first value and a check reading another
// can never disagree.

// repeatable are the parameters a request may carry more than once: RFC 8707
// resource indicators (not used here, but sending several is well-formed).
var repeatable = map[string]bool{"resource": true}

// redirectParameters decide where an authorization error may be sent; a
// problem with them is shown on an error page, never redirected.
var redirectParameters = []string{"client_id", "redirect_uri"}

// errParameterText and errParameterRepeated are the hygiene errors.
func errParameterText(name string) error {
	if !cleanText(name) {
		return fosite.ErrInvalidRequest.WithHint("A parameter name holds a control character or is not UTF-8.")
	}
	return fosite.ErrInvalidRequest.WithHintf("The parameter %q holds a control character or is not UTF-8.", name)
}

func errParameterRepeated(name string) error {
	return fosite.ErrInvalidRequest.WithHintf("The parameter %q must not be sent more than once.", name)
}

// checkParameterText refuses any name or value of form that is not UTF-8 or
// holds a control character (C0, DEL or C1).
func checkParameterText(form url.Values) error {
	for name, values := range form {
		if !cleanText(name) {
			return errParameterText(name)
		}
		for _, v := range values {
			if !cleanText(v) {
				return errParameterText(name)
			}
		}
	}
	return nil
}

// checkSingleValued refuses a parameter sent more than once.
func checkSingleValued(form url.Values) error {
	for name, values := range form {
		if len(values) > 1 && !repeatable[name] {
			return errParameterRepeated(name)
		}
	}
	return nil
}

// checkParameters is the whole hygiene of a request's parameters.
func checkParameters(form url.Values) error {
	if err := checkParameterText(form); err != nil {
		return err
	}
	return checkSingleValued(form)
}

// checkRedirectParameters is the hygiene of the parameters that choose the
// client and its redirect URI, checked before fosite reads them: a client_id
// with a NUL must not reach the client table, and of two redirect URIs
// neither is trusted.
func checkRedirectParameters(form url.Values) error {
	for _, name := range redirectParameters {
		values := form[name]
		if len(values) > 1 {
			return errParameterRepeated(name)
		}
		if len(values) == 1 && !cleanText(values[0]) {
			return errParameterText(name)
		}
	}
	return nil
}

// checkClientCredentials refuses HTTP Basic client credentials that are not
// clean text once form-decoded (RFC 6749 §2.3.1), as fosite decodes them.
func checkClientCredentials(r *http.Request) error {
	user, password, ok := r.BasicAuth()
	if !ok {
		return nil
	}
	for _, raw := range []string{user, password} {
		decoded, err := url.QueryUnescape(raw)
		if err != nil {
			continue // fosite refuses it as invalid_request
		}
		if !cleanText(decoded) {
			return fosite.ErrInvalidRequest.WithHint("The client credentials of the Authorization header hold a control character or are not UTF-8.")
		}
	}
	return nil
}

// admitClientForm opens an endpoint a client authenticates at by form
// (/token, /bc-authorize): the address's rate limit, the body read within
// its limit, every parameter (body and query) clean and sent once (RFC 6749
// §3.2) and Basic credentials clean, before the store or fosite reads one.
// It returns the error to answer with, or nil.
func (s *Server) admitClientForm(w http.ResponseWriter, r *http.Request, endpoint string) error {
	if ok, retry := s.admit(r, endpoint); !ok {
		return rateLimitError(retry, reasonRateLimitedIP)
	}
	if err := readForm(w, r); err != nil {
		return err
	}
	if err := checkParameters(r.Form); err != nil {
		return err
	}
	return checkClientCredentials(r)
}

// cleanText reports whether s is UTF-8 without control characters.
func cleanText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		} else if c >= utf8.RuneSelf {
			return cleanUnicode(s[i:])
		}
	}
	return true
}

func cleanUnicode(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// queryResponseMode makes an authorization request answer in the query,
// the one response mode offered (discovery lists only query): fosite would
// otherwise answer a request object's response_mode=form_post in a form, or
// a response_type other than exactly "code" in the fragment, errors
// included. handleAuthorize removes the plain response_mode before fosite
// reads it; checkAuthorizeParameters refuses any other mode asked for.
func queryResponseMode(ar fosite.AuthorizeRequester) {
	if req, ok := ar.(*fosite.AuthorizeRequest); ok {
		req.ResponseMode = fosite.ResponseModeQuery
		req.DefaultResponseMode = fosite.ResponseModeQuery
	}
}

// checkResponseMode refuses a response_mode other than query.
func checkResponseMode(modes ...string) error {
	for _, m := range modes {
		if m != "" && m != string(fosite.ResponseModeQuery) {
			return fosite.ErrInvalidRequest.WithHint("The only response_mode supported is query.")
		}
	}
	return nil
}
