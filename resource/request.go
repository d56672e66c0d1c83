package resource

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/numverify/numverify/internal/phone"
)

// Request bodies: read whole (bounded), then decoded strictly.

var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readBody reads at most limit bytes of the request body (413 beyond). The
// returned release gives the buffer back once the body is no longer used.
func readBody(req *http.Request, limit int64) ([]byte, func(), *apiError) {
	noop := func() {}
	if req.ContentLength > limit {
		return nil, noop, errTooLarge.with("The request body is larger than the server accepts.")
	}
	if req.Body == nil || req.Body == http.NoBody {
		return nil, noop, nil
	}
	buf := bodyBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	release := func() {
		if buf.Cap() <= 64<<10 {
			bodyBuffers.Put(buf)
		}
	}
	n, err := buf.ReadFrom(io.LimitReader(req.Body, limit+1))
	if n > limit {
		release()
		return nil, noop, errTooLarge.with("The request body is larger than the server accepts.")
	}
	if err != nil {
		release()
		return nil, noop, errInvalidBody.with("The request body could not be read.")
	}
	return buf.Bytes(), release, nil
}

// acceptsJSON reports whether an Accept header admits application/json
// (no header admits anything): a media range application/json,
// application/* or */* whose q is not 0. Each range is parsed by
// mime.ParseMediaType (case-insensitive names, quoted values, optional
// whitespace); one it cannot parse admits nothing, one with malformed
// parameters is taken without them. (goautoneg.ParseAccept would read
// "application/json;q=0.5 ;v=1" as q=0 and keeps the case of names, so it
// is not used.)
func acceptsJSON(accept string) bool {
	if accept == "" {
		return true
	}
	for _, mediaRange := range strings.Split(accept, ",") {
		mediaType, params, err := mime.ParseMediaType(mediaRange)
		if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
			continue
		}
		if mediaType != "application/json" && mediaType != "application/*" && mediaType != "*/*" {
			continue
		}
		if q, err := strconv.ParseFloat(params["q"], 64); err == nil && q == 0 {
			continue // q=0: not acceptable
		}
		return true
	}
	return false
}

// isJSONContentType accepts application/json, with at most a UTF-8 charset
// (a Content-Type that mime.ParseMediaType refuses is not JSON).
func isJSONContentType(contentType string) bool {
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil || mediaType != "application/json" {
		return false
	}
	charset, ok := params["charset"]
	return !ok || strings.EqualFold(charset, "utf-8")
}

// verifyRequest is a decoded and validated POST …/verify body.
type verifyRequest struct {
	hashed      bool
	phoneNumber string // E.164 with '+' (v0 input without '+' gets one)
	hash        [sha256.Size]byte
}

const (
	propertyPhoneNumber       = "phoneNumber"
	propertyHashedPhoneNumber = "hashedPhoneNumber"
)

// decodeVerifyRequest decodes a verify body strictly: one JSON object, no
// property but phoneNumber and hashedPhoneNumber (names compared exactly,
// none repeated), string values, nothing after the object; exactly one of
// the two; each matching its pattern. The Orange edition (v0) also takes a
// number without its '+'.
func decodeVerifyRequest(body []byte, d dialect) (verifyRequest, *apiError) {
	var req verifyRequest
	if len(bytes.TrimSpace(body)) == 0 {
		return req, errMissingBody.with("The request body is missing.")
	}
	given, hash, e := decodeVerifyProperties(body)
	if e != nil {
		return req, e
	}
	switch {
	case given == nil && hash == nil:
		return req, errMissingBodyField.with("One of phoneNumber and hashedPhoneNumber is required.")
	case given != nil && hash != nil:
		return req, errInvalidBody.with("Only one of phoneNumber and hashedPhoneNumber may be given.")
	case given != nil:
		number := *given
		if d == dialectOrange && !strings.HasPrefix(number, "+") {
			number = "+" + number
		}
		// The spec's pattern, not phonenumbers' validity: the contract
		// (and CAMARA's tests) accept any number of that shape, and
		// phonenumbers refuses some (+12345 is not a possible NANP number,
		// +99912345678 has no assigned country code); such a number simply
		// never matches the token's.
		if !phone.MatchesPattern(number) {
			return req, errInvalidBodyField.with(`phoneNumber must be an E.164 number with its '+' (^\+[1-9][0-9]{4,14}$).`)
		}
		req.phoneNumber = number
	default:
		if len(*hash) != 2*sha256.Size {
			return req, errInvalidBodyField.with("hashedPhoneNumber must be 64 hexadecimal digits (SHA-256).")
		}
		if _, err := hex.Decode(req.hash[:], []byte(*hash)); err != nil {
			return req, errInvalidBodyField.with("hashedPhoneNumber must be 64 hexadecimal digits (SHA-256).")
		}
		req.hashed = true
	}
	return req, nil
}

// decodeVerifyProperties walks the JSON tokens of the body.
func decodeVerifyProperties(body []byte) (phone, hash *string, e *apiError) {
	invalid := func(detail string) (*string, *string, *apiError) { return nil, nil, errInvalidBody.with(detail) }
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return invalid("The request body must be a JSON object.")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return invalid("The request body is not valid JSON.")
		}
		name, _ := tok.(string)
		var target **string
		switch name {
		case propertyPhoneNumber:
			target = &phone
		case propertyHashedPhoneNumber:
			target = &hash
		default:
			return invalid("The request body may only have the property phoneNumber or hashedPhoneNumber.")
		}
		if *target != nil {
			return invalid("The request body repeats the property " + name + ".")
		}
		tok, err = dec.Token()
		if err != nil {
			return invalid("The request body is not valid JSON.")
		}
		value, ok := tok.(string)
		if !ok {
			return nil, nil, errInvalidBodyField.with(name + " must be a string.")
		}
		*target = &value
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return invalid("The request body is not valid JSON.")
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("The request body has data after the JSON object.")
	}
	return phone, hash, nil
}

// matches compares the request with the token's number in constant time.
// A hash is of the E.164 number with its '+'; the Orange edition also
// accepts the hash of the number without it.
func (r *verifyRequest) matches(deviceNumber string, d dialect) bool {
	if !r.hashed {
		return subtle.ConstantTimeCompare([]byte(r.phoneNumber), []byte(deviceNumber)) == 1
	}
	withPlus := sha256.Sum256([]byte(deviceNumber))
	match := subtle.ConstantTimeCompare(r.hash[:], withPlus[:])
	if d == dialectOrange {
		withoutPlus := sha256.Sum256([]byte(strings.TrimPrefix(deviceNumber, "+")))
		match |= subtle.ConstantTimeCompare(r.hash[:], withoutPlus[:])
	}
	return match == 1
}
