// Package asyncapi holds WebSocket frames to chatd's AsyncAPI document,
// adapters/websocket/asyncapi.yaml. It reads the schema of every message
// out of the document itself (the payloads of the operations' messages and
// replies), so the document operators read is the one source the tests
// check: the adapter's unit tests check the frames it encodes and the e2e
// suite every frame its clients wrote and read. A frame is matched to its
// schema by direction and `type`; the seed's send, the one frame without a
// `type`, is the client message whose schema has no `type` property.
package asyncapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// Direction says who sends a frame.
type Direction string

const (
	// FromClient frames are what the server receives.
	FromClient Direction = "client"
	// FromServer frames are what the server sends.
	FromServer Direction = "server"
)

// untyped is the frame type of a frame without a `type` field.
const untyped = ""

// documentURL names the document for the schema compiler, which resolves
// the payloads' $refs inside it.
const documentURL = "file:///chatd/adapters/websocket/asyncapi.yaml"

// Document is the AsyncAPI document, compiled.
type Document struct {
	schemas    map[Direction]map[string]*jsonschema.Schema
	examples   []Example
	closeCodes []int
}

// Example is one example payload the document gives for a message.
type Example struct {
	Direction Direction
	Message   string // the message's place in the document, such as #/components/messages/ack
	Payload   json.RawMessage
}

// Path is where the document lives in this checkout.
func Path() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("asyncapi: cannot tell where the package's source is")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "adapters", "websocket", "asyncapi.yaml"), nil
}

// Load reads and compiles the document of this checkout.
func Load() (*Document, error) {
	path, err := Path()
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("asyncapi: %w", err)
	}
	return Parse(data)
}

// Parse compiles a document: the schema of every message its operations
// receive (client frames) and send or reply with (server frames).
func Parse(data []byte) (*Document, error) {
	root, err := decodeYAML(data)
	if err != nil {
		return nil, err
	}
	compiler := jsonschema.NewCompiler()
	compiler.DefaultDraft(jsonschema.Draft7) // AsyncAPI's schema format is a superset of draft 07
	compiler.AssertFormat()
	if err := compiler.AddResource(documentURL, root); err != nil {
		return nil, fmt.Errorf("asyncapi: %w", err)
	}
	d := &Document{schemas: map[Direction]map[string]*jsonschema.Schema{FromClient: {}, FromServer: {}}}
	messages, err := messagesByDirection(root)
	if err != nil {
		return nil, err
	}
	seen := map[Direction]map[string]string{FromClient: {}, FromServer: {}}
	for _, m := range messages {
		if prev, ok := seen[m.dir][m.frameType]; ok {
			if prev != m.pointer {
				return nil, fmt.Errorf("asyncapi: %s frames of type %q have two messages, %s and %s", m.dir, m.frameType, prev, m.pointer)
			}
			continue
		}
		seen[m.dir][m.frameType] = m.pointer
		schema, err := compiler.Compile(documentURL + m.pointer + "/payload")
		if err != nil {
			return nil, fmt.Errorf("asyncapi: compiling %s: %w", m.pointer, err)
		}
		d.schemas[m.dir][m.frameType] = schema
		for _, ex := range m.examples {
			d.examples = append(d.examples, Example{Direction: m.dir, Message: m.pointer, Payload: ex})
		}
	}
	d.closeCodes, err = closeCodes(root)
	return d, err
}

// Check validates one frame, as sent in dir, against the schema of its type.
func (d *Document) Check(dir Direction, frame []byte) error {
	value, err := jsonschema.UnmarshalJSON(bytes.NewReader(frame))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	object, ok := value.(map[string]any)
	if !ok {
		return errors.New("not a JSON object")
	}
	frameType := untyped
	if t, present := object["type"]; present {
		if frameType, ok = t.(string); !ok {
			return errors.New("its type is not a string")
		}
	}
	schema, ok := d.schemas[dir][frameType]
	if !ok {
		return fmt.Errorf("the document has no %s frame of type %q", dir, frameType)
	}
	return schema.Validate(value)
}

// Rule names what a Check error broke without the frame's values: the
// schema keywords that failed (such as ...#/components/schemas/Seq/minimum),
// so that many frames breaking one rule read as one failure. An error of
// another kind is its own text.
func Rule(err error) string {
	var invalid *jsonschema.ValidationError
	if !errors.As(err, &invalid) {
		return err.Error()
	}
	var rules []string
	var leaves func(*jsonschema.ValidationError)
	leaves = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			rules = append(rules, e.SchemaURL+"/"+strings.Join(e.ErrorKind.KeywordPath(), "/"))
		}
		for _, cause := range e.Causes {
			leaves(cause)
		}
	}
	leaves(invalid)
	slices.Sort(rules)
	return strings.Join(slices.Compact(rules), " and ")
}

// FrameTypes lists the frame types the document has for dir, sorted; the
// seed's untyped send is "".
func (d *Document) FrameTypes(dir Direction) []string {
	var out []string
	for t := range d.schemas[dir] {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// Examples lists every example payload of the document's messages.
func (d *Document) Examples() []Example { return d.examples }

// DocumentsCloseCode tells whether the channel's x-close-codes list code.
func (d *Document) DocumentsCloseCode(code int) bool { return slices.Contains(d.closeCodes, code) }

// decodeYAML turns the YAML document into the JSON values the schema
// compiler takes, by way of JSON so that numbers are json.Number.
func decodeYAML(data []byte) (any, error) {
	var tree any
	if err := yaml.Unmarshal(data, &tree); err != nil {
		return nil, fmt.Errorf("asyncapi: %w", err)
	}
	asJSON, err := json.Marshal(tree)
	if err != nil {
		return nil, fmt.Errorf("asyncapi: the document is not JSON-shaped: %w", err)
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(asJSON))
}

type message struct {
	dir       Direction
	frameType string
	pointer   string // #/components/messages/...
	examples  []json.RawMessage
}

// messagesByDirection walks the operations: what a `receive` operation
// takes comes from the client, what a `send` operation sends and what any
// operation replies comes from the server.
func messagesByDirection(root any) ([]message, error) {
	operations, _ := field(root, "operations").(map[string]any)
	if len(operations) == 0 {
		return nil, errors.New("asyncapi: the document has no operations")
	}
	names := make([]string, 0, len(operations))
	for name := range operations {
		names = append(names, name)
	}
	slices.Sort(names)
	var out []message
	for _, name := range names {
		op := operations[name]
		dir := FromServer
		switch action := field(op, "action"); action {
		case "receive":
			dir = FromClient
		case "send":
		default:
			return nil, fmt.Errorf("asyncapi: operation %s has action %v", name, action)
		}
		refs, _ := field(op, "messages").([]any)
		taken, err := resolveMessages(root, refs, dir)
		if err != nil {
			return nil, fmt.Errorf("asyncapi: operation %s: %w", name, err)
		}
		replies, _ := field(field(op, "reply"), "messages").([]any)
		answered, err := resolveMessages(root, replies, FromServer)
		if err != nil {
			return nil, fmt.Errorf("asyncapi: operation %s's reply: %w", name, err)
		}
		out = append(append(out, taken...), answered...)
	}
	return out, nil
}

func resolveMessages(root any, refs []any, dir Direction) ([]message, error) {
	out := make([]message, 0, len(refs))
	for _, ref := range refs {
		pointer, msg, err := resolve(root, ref)
		if err != nil {
			return nil, err
		}
		_, payload, err := resolve(root, field(msg, "payload"))
		if err != nil {
			return nil, fmt.Errorf("%s's payload: %w", pointer, err)
		}
		frameType := untyped
		if t := field(field(field(payload, "properties"), "type"), "const"); t != nil {
			s, ok := t.(string)
			if !ok {
				return nil, fmt.Errorf("%s: the const of type is not a string", pointer)
			}
			frameType = s
		}
		m := message{dir: dir, frameType: frameType, pointer: pointer}
		examples, _ := field(msg, "examples").([]any)
		for _, ex := range examples {
			data, err := json.Marshal(field(ex, "payload"))
			if err != nil {
				return nil, err
			}
			m.examples = append(m.examples, data)
		}
		out = append(out, m)
	}
	return out, nil
}

// resolve follows node's $refs, which must point into the document, and
// returns where it ended and what is there.
func resolve(root, node any) (pointer string, target any, err error) {
	for range 10 {
		ref, isRef := field(node, "$ref").(string)
		if !isRef {
			return pointer, node, nil
		}
		if !strings.HasPrefix(ref, "#/") {
			return "", nil, fmt.Errorf("$ref %q does not point into the document", ref)
		}
		pointer, node = ref, root
		for _, token := range strings.Split(ref[2:], "/") {
			token = strings.NewReplacer("~1", "/", "~0", "~").Replace(token)
			if node = field(node, token); node == nil {
				return "", nil, fmt.Errorf("$ref %q points at nothing", ref)
			}
		}
	}
	return "", nil, fmt.Errorf("$ref %q: too many $refs in a row", pointer)
}

// closeCodes reads the x-close-codes of every channel.
func closeCodes(root any) ([]int, error) {
	channels, _ := field(root, "channels").(map[string]any)
	var out []int
	for name, ch := range channels {
		list, _ := field(ch, "x-close-codes").([]any)
		for _, entry := range list {
			n, _ := field(entry, "code").(json.Number)
			code, err := n.Int64()
			if err != nil {
				return nil, fmt.Errorf("asyncapi: channel %s: a close code that is not an integer: %v", name, field(entry, "code"))
			}
			out = append(out, int(code))
		}
	}
	return out, nil
}

// field is node[name] when node is an object, else nil.
func field(node any, name string) any {
	object, _ := node.(map[string]any)
	return object[name]
}
