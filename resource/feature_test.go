package resource

import (
	"bufio"
	"net/http"
	"os"
	"strings"
	"testing"
)

// The newest CAMARA text (testdata/spec/camara-main, the main branch between
// 2.1.0 and 2.1.1) comes with Gherkin test definitions. Every scenario of
// its .feature files is run here against /number-verification/v2 (this
// server serves 2.1.1 semantics on v2: the same major version, a
// backwards-compatible tightening), as the step text describes it, and every
// response also passes checkContract. A scenario without a case here fails
// the test: a newer copy of the definitions cannot be dropped in silently.

// featureScenarios lists the scenario tags of a .feature file.
func featureScenarios(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var tags []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "@") {
			tags = append(tags, strings.TrimPrefix(line, "@"))
		}
	}
	if err := sc.Err(); err != nil || len(tags) == 0 {
		t.Fatalf("%s: no scenarios (%v)", path, err)
	}
	return tags
}

// featureCase is what a scenario sends and expects.
type featureCase struct {
	token        func() string
	body         *string // verify only; nil: no body
	wantStatus   int
	wantCode     string
	wantVerified any // verify: true, false, or nil for an error
}

func TestCAMARAFeatureScenarios(t *testing.T) {
	is := newTestIssuer(t)
	ts := startServer(t, is, nil)
	tokens := nestedTokenKinds(is)
	plain := func(n string) *string { return str(`{"phoneNumber":"` + n + `"}`) }
	hashed := func(n string) *string { return str(`{"hashedPhoneNumber":"` + sha(n) + `"}`) }
	unauthenticated := func(token func() string) featureCase {
		return featureCase{token: token, body: plain(testPhone), wantStatus: 401, wantCode: "UNAUTHENTICATED"}
	}
	none := func() string { return "" }
	verify := map[string]featureCase{
		"phone_number_verify_01_generic_success_scenario":                                       {tokens.valid, plain(testPhone), 200, "", true},
		"phone_number_verify.02_validate_phone_number_success_true":                             {tokens.valid, plain(testPhone), 200, "", true},
		"phone_number_verify.03_validate_phone_number_success_false":                            {tokens.valid, plain(otherPhone), 200, "", false},
		"phone_number_verify.04_validate_hashed_phone_number_success_true":                      {tokens.valid, hashed(testPhone), 200, "", true},
		"phone_number_verify.05_validate_hashed_phone_number_success_false":                     {tokens.valid, hashed(otherPhone), 200, "", false},
		"phone_number_verify_400.1_no_request_body":                                             {tokens.valid, nil, 400, "INVALID_ARGUMENT", nil},
		"phone_number_verify_400.2_empty_request_body":                                          {tokens.valid, str(`{}`), 400, "INVALID_ARGUMENT", nil},
		"phone_number_verify_400.3_invalid_request_non_existing_property":                       {tokens.valid, str(`{"additional_property":"foo_value"}`), 400, "INVALID_ARGUMENT", nil},
		"phone_number_verify_400.4_both_phone_number_and_hashed_in_request":                     {tokens.valid, str(`{"phoneNumber":"` + testPhone + `","hashedPhoneNumber":"` + sha(testPhone) + `"}`), 400, "INVALID_ARGUMENT", nil},
		"phone_number_verify_401.1_no_authorization_header":                                     unauthenticated(none),
		"phone_number_verify_401.2_expired_access_token":                                        unauthenticated(tokens.expired),
		"phone_number_verify_401.3_invalid_access_token":                                        unauthenticated(tokens.invalid),
		"phoneNumberVerify_403.1_invalid_token_permissions":                                     {tokens.shareOnly, plain(testPhone), 403, "PERMISSION_DENIED", nil},
		"phoneNumberVerify_403.2_not_authenticated_using_network_or_sim_based_authentication":   {tokens.notNetwork, plain(testPhone), 403, "NUMBER_VERIFICATION.USER_NOT_AUTHENTICATED_BY_MOBILE_NETWORK", nil},
		"phone_number_verify_C02.01_phone_number_not_schema_compliant":                          {tokens.valid, plain("+00012230304913849"), 400, "INVALID_ARGUMENT", nil},
		"phone_number_verify_C02.01_phone_number_not_schema_compliant/longer_than_maxLength_16": {tokens.valid, plain("+3361234567890123"), 400, "INVALID_ARGUMENT", nil},
	}
	share := map[string]featureCase{
		"phone_number_share_01_generic_success_scenario":                                     {token: tokens.valid, wantStatus: 200},
		"phone_number_share_02_success_scenario":                                             {token: tokens.valid, wantStatus: 200},
		"phone_number_verify_401.1_no_authorization_header":                                  {token: none, wantStatus: 401, wantCode: "UNAUTHENTICATED"},
		"phone_number_verify_401.2_expired_access_token":                                     {token: tokens.expired, wantStatus: 401, wantCode: "UNAUTHENTICATED"},
		"phone_number_verify_401.3_invalid_access_token":                                     {token: tokens.invalid, wantStatus: 401, wantCode: "UNAUTHENTICATED"},
		"phoneNumberShare_403.1_invalid_token_permissions":                                   {token: tokens.verifyOnly, wantStatus: 403, wantCode: "PERMISSION_DENIED"},
		"phoneNumberShare_403.2_not_authenticated_using_network_or_sim_based_authentication": {token: tokens.notNetwork, wantStatus: 403, wantCode: "NUMBER_VERIFICATION.USER_NOT_AUTHENTICATED_BY_MOBILE_NETWORK"},
	}
	for _, feature := range []struct {
		file, method, path string
		cases              map[string]featureCase
	}{
		{"number-verification-phoneNumberVerify.feature", http.MethodPost, basePathV2 + "/verify", verify},
		{"number-verification-phoneNumberShare.feature", http.MethodGet, basePathV2 + "/device-phone-number", share},
	} {
		tags := featureScenarios(t, "testdata/spec/camara-main/"+feature.file)
		for name := range feature.cases { // extra cases ride on a scenario's tag: "<tag>/<what>"
			if strings.Contains(name, "/") {
				tags = append(tags, name)
			}
		}
		for _, tag := range tags {
			c, ok := feature.cases[tag]
			t.Run(strings.TrimSuffix(feature.file, ".feature")+"/"+tag, func(t *testing.T) {
				if !ok {
					t.Fatalf("scenario @%s of %s has no case here", tag, feature.file)
				}
				r := ts.do(t, call{method: feature.method, path: feature.path, token: c.token(), body: c.body,
					headers: map[string]string{"x-correlator": "camara-case-correlator"}})
				checkCase(t, r, c.wantStatus, c.wantCode, "", false)
				checkContract(t, r)
				switch {
				case c.wantVerified != nil && r.field("devicePhoneNumberVerified") != c.wantVerified:
					t.Errorf("devicePhoneNumberVerified = %v, want %v", r.field("devicePhoneNumberVerified"), c.wantVerified)
				case c.wantStatus != 200 && r.field("message") == "":
					t.Errorf("no message: %s", r.body)
				case feature.method == http.MethodGet && c.wantStatus == 200 && r.field("devicePhoneNumber") != testPhone:
					t.Errorf("devicePhoneNumber = %v, want %s", r.field("devicePhoneNumber"), testPhone)
				}
			})
		}
	}
}
