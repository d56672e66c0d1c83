// Package threegpp holds the 3GPP vendor attributes (vendor 10415: 3GPP-IMSI,
// 3GPP-RAT-Type, 3GPP-IMEISV, 3GPP-User-Location-Info, …) of RADIUS
// accounting on the Gi/SGi interface (3GPP TS 29.061).
//
// generated.go is generated, not written: layeh.com/radius's dictionary
// generator (layeh.com/radius/cmd/radius-dict-gen) reads FreeRADIUS's
// dictionary.3gpp, which Debian's freeradius-common installs at
// /usr/share/freeradius/dictionary.3gpp ($Id:
// ce5b6bc571f2d93183775ab983467ec44c0df19f, © The FreeRADIUS Server project
// and contributors, CC-BY 4.0). Regenerate with `go generate ./network/radius/threegpp`.
package threegpp

//go:generate go run layeh.com/radius/cmd/radius-dict-gen -package threegpp -output generated.go /usr/share/freeradius/dictionary.3gpp
