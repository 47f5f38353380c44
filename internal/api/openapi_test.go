package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The tests in this file keep openapi.json true to the code: every route of the table is
// documented and nothing else is, every reference resolves, request bodies allow exactly the
// fields the handlers accept, and the objects the API returns have exactly the documented
// members.
//
// To document a new route: add its operation under paths (operationId, summary, security,
// responses), reuse the shared parameters (IdPath, Page, PageSize) and error responses, and
// if it reads a JSON body add its allowed field list to bodyFields below.

// bodyFields maps each route that reads a JSON body to the member names its handler allows.
func bodyFields() map[string][]string {
	return map[string][]string{
		"POST /v3/accounts":       accountFields,
		"PATCH /v3/accounts/{id}": accountFields,
		"POST /v3/webhooks":       webhookFields,
		"PATCH /v3/webhooks/{id}": webhookPatchFields,
		"POST /v3/events":         eventFields,
		"POST /v3/events/batch":   {"events"},
	}
}

// responseObjects maps a schema of components.schemas to the Go type the API marshals for it.
var responseObjects = map[string]any{
	"Error":          ErrorBody{},
	"Account":        Account{},
	"APIKey":         APIKey{},
	"Webhook":        Webhook{},
	"Delivery":       Delivery{},
	"DeliveryDetail": DeliveryDetail{},
	"Attempt":        Attempt{},
	"TestSend":       TestSend{},
	"PublishedEvent": PublishedEvent{},
	"Batch":          Batch{},
	"BatchResult":    BatchResult{},
	"Alert":          Alert{},
}

// httpMethods are the operation keys of an OpenAPI path item.
var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

type jsonObject = map[string]any

func loadOpenAPI(t *testing.T) jsonObject {
	t.Helper()
	b, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc jsonObject
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	return doc
}

// operation is one method of one path of the document.
type operation struct {
	method, path string
	op           jsonObject
	pathItem     jsonObject
}

func (o operation) String() string { return o.method + " " + o.path }

func operations(t *testing.T, doc jsonObject) map[string]operation {
	t.Helper()
	paths, ok := doc["paths"].(jsonObject)
	if !ok {
		t.Fatal("openapi.json has no paths object")
	}
	ops := map[string]operation{}
	for path, v := range paths {
		item, ok := v.(jsonObject)
		if !ok {
			t.Errorf("paths[%q] is not an object", path)
			continue
		}
		for _, m := range httpMethods {
			if v, ok := item[m]; ok {
				op, ok := v.(jsonObject)
				if !ok {
					t.Errorf("paths[%q].%s is not an object", path, m)
					continue
				}
				o := operation{method: strings.ToUpper(m), path: path, op: op, pathItem: item}
				ops[o.String()] = o
			}
		}
	}
	return ops
}

func testServer() *Server { return New(Config{}) }

func routesByKey() map[string]Route {
	m := map[string]Route{}
	for _, rt := range testServer().Routes() {
		m[rt.Method+" "+rt.Pattern] = rt
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// resolve follows a local reference ("#/a/b") inside doc.
func resolve(doc jsonObject, ref string) (any, error) {
	ptr, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil, fmt.Errorf("%q is not a reference inside the document", ref)
	}
	var cur any = doc
	if ptr == "" {
		return cur, nil
	}
	if !strings.HasPrefix(ptr, "/") {
		return nil, fmt.Errorf("%q is not a JSON pointer", ref)
	}
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case jsonObject:
			v, ok := c[tok]
			if !ok {
				return nil, fmt.Errorf("%q: no member %q", ref, tok)
			}
			cur = v
		case []any:
			var i int
			if _, err := fmt.Sscanf(tok, "%d", &i); err != nil || i < 0 || i >= len(c) {
				return nil, fmt.Errorf("%q: no element %q", ref, tok)
			}
			cur = c[i]
		default:
			return nil, fmt.Errorf("%q: cannot descend into %q", ref, tok)
		}
	}
	return cur, nil
}

// deref returns v, or what it refers to when it is a {"$ref": …} object (following chains).
func deref(t *testing.T, doc jsonObject, v any) jsonObject {
	t.Helper()
	for range 20 {
		obj, ok := v.(jsonObject)
		if !ok {
			t.Fatalf("expected an object, got %T", v)
		}
		ref, ok := obj["$ref"].(string)
		if !ok {
			return obj
		}
		var err error
		if v, err = resolve(doc, ref); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("reference chain too long")
	return nil
}

func TestOpenAPIVersionAndInfo(t *testing.T) {
	doc := loadOpenAPI(t)
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", doc["openapi"])
	}
	info, _ := doc["info"].(jsonObject)
	if info == nil || info["title"] == nil || info["version"] == nil {
		t.Errorf("info must have a title and a version, got %v", info)
	}
}

// TestOpenAPIMatchesRoutes: the operations of the document are exactly the routes of the table.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	ops := operations(t, loadOpenAPI(t))
	routes := routesByKey()
	var missingInDoc, missingInCode []string
	for k := range routes {
		if _, ok := ops[k]; !ok {
			missingInDoc = append(missingInDoc, k)
		}
	}
	for k := range ops {
		if _, ok := routes[k]; !ok {
			missingInCode = append(missingInCode, k)
		}
	}
	sort.Strings(missingInDoc)
	sort.Strings(missingInCode)
	if len(missingInDoc) > 0 {
		t.Errorf("routes served by the code but missing from openapi.json (add them under paths):\n  %s",
			strings.Join(missingInDoc, "\n  "))
	}
	if len(missingInCode) > 0 {
		t.Errorf("operations in openapi.json that the code does not serve (remove them, or add the route to table() in api.go):\n  %s",
			strings.Join(missingInCode, "\n  "))
	}
}

// TestOpenAPIOperations: every operation is complete and says who may call it, as the route does.
func TestOpenAPIOperations(t *testing.T) {
	doc := loadOpenAPI(t)
	ops := operations(t, doc)
	routes := routesByKey()
	ids := map[string]string{}
	pathParam := regexp.MustCompile(`\{([^}]+)\}`)
	for _, key := range sortedKeys(ops) {
		o := ops[key]
		id, _ := o.op["operationId"].(string)
		switch {
		case id == "":
			t.Errorf("%s: no operationId", o)
		case ids[id] != "":
			t.Errorf("%s: operationId %q is also used by %s", o, id, ids[id])
		default:
			ids[id] = key
		}
		if s, _ := o.op["summary"].(string); strings.TrimSpace(s) == "" {
			t.Errorf("%s: no summary", o)
		}
		responses, _ := o.op["responses"].(jsonObject)
		if len(responses) == 0 {
			t.Errorf("%s: no responses", o)
		}
		success := false
		for code := range responses {
			success = success || len(code) == 3 && code[0] == '2'
		}
		if !success {
			t.Errorf("%s: no 2xx response", o)
		}

		// Path parameters: each {name} of the path is declared, and nothing more.
		declared := map[string]bool{}
		for _, src := range []jsonObject{o.pathItem, o.op} {
			params, _ := src["parameters"].([]any)
			for _, p := range params {
				param := deref(t, doc, p)
				if param["in"] == "path" {
					name, _ := param["name"].(string)
					declared[name] = true
					if param["required"] != true {
						t.Errorf("%s: path parameter %q must be required", o, name)
					}
				}
			}
		}
		inPath := map[string]bool{}
		for _, m := range pathParam.FindAllStringSubmatch(o.path, -1) {
			inPath[m[1]] = true
			if !declared[m[1]] {
				t.Errorf("%s: path parameter %q is not declared", o, m[1])
			}
		}
		for name := range declared {
			if !inPath[name] {
				t.Errorf("%s: declares path parameter %q that is not in the path", o, name)
			}
		}

		rt, ok := routes[key]
		if !ok {
			continue // reported by TestOpenAPIMatchesRoutes
		}
		// Security as the route's access, and the answers that access implies.
		sec, hasSec := o.op["security"].([]any)
		if !hasSec {
			t.Errorf("%s: no security (use [] for a public route)", o)
		}
		var want []any
		var codes []string
		switch rt.access {
		case admin:
			want, codes = []any{jsonObject{"adminKey": []any{}}}, []string{"401", "403"}
		case account:
			want, codes = []any{jsonObject{"accountKey": []any{}}}, []string{"401", "403"}
		default:
			want = []any{}
		}
		if hasSec && !reflect.DeepEqual(sec, want) {
			t.Errorf("%s: security = %v, want %v", o, sec, want)
		}
		if rt.body {
			codes = append(codes, "400", "413", "415")
		}
		codes = append(codes, "500")
		for _, c := range codes {
			if _, ok := responses[c]; !ok {
				t.Errorf("%s: no %s response, which the code can answer", o, c)
			}
		}
	}
}

// TestOpenAPIRefsResolve: every $ref points at something inside the document.
func TestOpenAPIRefsResolve(t *testing.T) {
	doc := loadOpenAPI(t)
	n := 0
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case jsonObject:
			for _, k := range sortedKeys(v) {
				if k == "$ref" {
					n++
					ref, ok := v[k].(string)
					if !ok {
						t.Errorf("%s: $ref is not a string", at)
					} else if _, err := resolve(doc, ref); err != nil {
						t.Errorf("%s: unresolved $ref: %v", at, err)
					}
					continue
				}
				walk(v[k], at+"/"+k)
			}
		case []any:
			for i, e := range v {
				walk(e, fmt.Sprintf("%s/%d", at, i))
			}
		}
	}
	walk(doc, "#")
	if n == 0 {
		t.Error("no $ref found: the walk is broken")
	}
}

// TestOpenAPIRequestBodies: a route that reads a JSON body documents one whose properties are
// exactly the fields its handler allows, and refuses others; a route without one documents none.
func TestOpenAPIRequestBodies(t *testing.T) {
	doc := loadOpenAPI(t)
	ops := operations(t, doc)
	fields := bodyFields()
	routes := routesByKey()
	for _, key := range sortedKeys(routes) {
		rt := routes[key]
		o, ok := ops[key]
		if !ok {
			continue // reported by TestOpenAPIMatchesRoutes
		}
		rb, hasBody := o.op["requestBody"]
		if !rt.body {
			if hasBody {
				t.Errorf("%s: documents a request body but the route reads none", key)
			}
			continue
		}
		if !hasBody {
			t.Errorf("%s: reads a JSON body but documents no requestBody", key)
			continue
		}
		allowed, ok := fields[key]
		if !ok {
			t.Errorf("%s: reads a JSON body; add its allowed field list to bodyFields in openapi_test.go", key)
			continue
		}
		body := deref(t, doc, rb)
		if body["required"] != true {
			t.Errorf("%s: requestBody.required must be true", key)
		}
		content, _ := body["content"].(jsonObject)
		media, ok := content["application/json"]
		if !ok {
			t.Errorf("%s: requestBody has no application/json content", key)
			continue
		}
		schema := deref(t, doc, deref(t, doc, media)["schema"])
		if schema["type"] != "object" {
			t.Errorf("%s: body schema type = %v, want object", key, schema["type"])
		}
		if schema["additionalProperties"] != false {
			t.Errorf("%s: body schema must have additionalProperties: false (unknown fields answer 400)", key)
		}
		props, _ := schema["properties"].(jsonObject)
		got := sortedKeys(props)
		want := slices.Sorted(slices.Values(allowed))
		if !slices.Equal(got, want) {
			t.Errorf("%s: body schema properties = %v, the code allows %v", key, got, want)
		}
		if req, ok := schema["required"].([]any); ok {
			for _, r := range req {
				if name, _ := r.(string); !slices.Contains(allowed, name) {
					t.Errorf("%s: required field %v is not an allowed field", key, r)
				}
			}
		}
	}
	for key := range fields {
		if _, ok := routes[key]; !ok {
			t.Errorf("bodyFields names %s, which is not a route", key)
		}
	}
}

// TestOpenAPIResponseObjects: the schemas of the objects the API returns list exactly the JSON
// members of the Go types it marshals, and require those that are always present.
func TestOpenAPIResponseObjects(t *testing.T) {
	doc := loadOpenAPI(t)
	for _, name := range sortedKeys(responseObjects) {
		v, err := resolve(doc, "#/components/schemas/"+name)
		if err != nil {
			t.Errorf("schema %s: %v", name, err)
			continue
		}
		schema := v.(jsonObject)
		var members, always []string
		typ := reflect.TypeOf(responseObjects[name])
		// VisibleFields includes the fields of embedded structs, which marshal at this level.
		for _, f := range reflect.VisibleFields(typ) {
			tag := f.Tag.Get("json")
			if f.Anonymous || !f.IsExported() || tag == "-" {
				continue
			}
			n, opts, _ := strings.Cut(tag, ",")
			if n == "" {
				n = f.Name
			}
			members = append(members, n)
			if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
				always = append(always, n)
			}
		}
		props, _ := schema["properties"].(jsonObject)
		if got, want := sortedKeys(props), slices.Sorted(slices.Values(members)); !slices.Equal(got, want) {
			t.Errorf("schema %s: properties = %v, the Go type %s marshals %v", name, got, typ.Name(), want)
		}
		var required []string
		for _, r := range schema["required"].([]any) {
			required = append(required, r.(string))
		}
		slices.Sort(required)
		if want := slices.Sorted(slices.Values(always)); !slices.Equal(required, want) {
			t.Errorf("schema %s: required = %v, the Go type %s always marshals %v", name, required, typ.Name(), want)
		}
		// A pointer member marshals null when nil, so its schema must allow null (unless
		// omitempty or omitzero leave it out instead).
		for _, f := range reflect.VisibleFields(typ) {
			n, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if f.Anonymous || f.Type.Kind() != reflect.Pointer || props == nil ||
				strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero") {
				continue
			}
			p, _ := props[n].(jsonObject)
			types, _ := p["type"].([]any)
			if !slices.Contains(types, any("null")) {
				t.Errorf("schema %s: %s can be null; its type must include \"null\"", name, n)
			}
		}
	}
}

// TestOpenAPIServed: GET /v3/openapi.json answers the file as it is in the source tree.
func TestOpenAPIServed(t *testing.T) {
	want, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(openapiDoc, want) {
		t.Fatal("the embedded document differs from openapi.json")
	}
	rec := httptest.NewRecorder()
	testServer().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v3/openapi.json", nil))
	res := rec.Result()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /v3/openapi.json: status %d, want 200; body %s", res.StatusCode, rec.Body.Bytes())
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET /v3/openapi.json: Content-Type %q, want application/json", ct)
	}
	if !bytes.Equal(rec.Body.Bytes(), want) {
		t.Errorf("GET /v3/openapi.json: body (%d bytes) differs from openapi.json (%d bytes)", rec.Body.Len(), len(want))
	}
}
