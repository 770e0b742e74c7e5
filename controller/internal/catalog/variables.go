package catalog

import (
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Variable types.
const (
	TypeString   = "string"
	TypePassword = "password"
	TypeNumber   = "number"
	TypeBoolean  = "boolean"
	TypeSelect   = "select"
	TypePort     = "port"
	TypeURL      = "url"
	TypeEmail    = "email"
)

var variableTypes = []string{TypeString, TypePassword, TypeNumber, TypeBoolean, TypeSelect, TypePort, TypeURL, TypeEmail}

// Variable is one input of a stack version, declared in x-rsgo.variables.
type Variable struct {
	Name        string   `json:"name"`
	Type        string   `json:"type"`
	Label       string   `json:"label,omitempty"`
	Description string   `json:"description,omitempty"`
	Default     *string  `json:"default,omitempty"`
	Required    bool     `json:"required"`
	Pattern     string   `json:"pattern,omitempty"`
	Min         *float64 `json:"min,omitempty"`
	Max         *float64 `json:"max,omitempty"`
	Options     []string `json:"options,omitempty"`

	pattern *regexp.Regexp
}

// Secret reports whether values of the variable must never be shown.
func (v Variable) Secret() bool { return v.Type == TypePassword }

// FieldError names one variable and why its value is not acceptable.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// ValidationError carries one FieldError per offending variable.
type ValidationError struct{ Fields []FieldError }

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Error()
	}
	return "invalid variables: " + strings.Join(parts, "; ")
}

// variableNamePattern is what may stand in ${...}.
var variableNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// check validates a declaration; it returns a message or "".
func (v *Variable) check() string {
	if !variableNamePattern.MatchString(v.Name) {
		return "name must be letters, digits and '_', not starting with a digit"
	}
	if !slices.Contains(variableTypes, v.Type) {
		return fmt.Sprintf("unknown type %q (want one of %s)", v.Type, strings.Join(variableTypes, ", "))
	}
	if v.Pattern != "" {
		if v.Type != TypeString {
			return "pattern is only allowed on type string"
		}
		re, err := regexp.Compile("^(?:" + v.Pattern + ")$")
		if err != nil {
			return fmt.Sprintf("pattern: %v", err)
		}
		v.pattern = re
	}
	if (v.Min != nil || v.Max != nil) && v.Type != TypeNumber {
		return "min and max are only allowed on type number"
	}
	if v.Min != nil && v.Max != nil && *v.Min > *v.Max {
		return "min is greater than max"
	}
	if v.Type == TypeSelect && len(v.Options) == 0 {
		return "type select needs options"
	}
	if v.Type != TypeSelect && len(v.Options) > 0 {
		return "options are only allowed on type select"
	}
	if v.Default != nil {
		if msg := v.checkValue(*v.Default); msg != "" {
			return "default: " + msg
		}
	}
	return ""
}

// checkValue validates one value against the declaration.
func (v Variable) checkValue(s string) string {
	switch v.Type {
	case TypeString, TypePassword:
		if v.pattern != nil && !v.pattern.MatchString(s) {
			return fmt.Sprintf("must match the pattern %s", v.Pattern)
		}
	case TypeNumber:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return "must be a number"
		}
		if v.Min != nil && f < *v.Min {
			return fmt.Sprintf("must be at least %s", strconv.FormatFloat(*v.Min, 'f', -1, 64))
		}
		if v.Max != nil && f > *v.Max {
			return fmt.Sprintf("must be at most %s", strconv.FormatFloat(*v.Max, 'f', -1, 64))
		}
	case TypeBoolean:
		if s != "true" && s != "false" {
			return "must be true or false"
		}
	case TypeSelect:
		if !slices.Contains(v.Options, s) {
			return fmt.Sprintf("must be one of %s", strings.Join(v.Options, ", "))
		}
	case TypePort:
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 65535 {
			return "must be a port number from 1 to 65535"
		}
	case TypeURL:
		u, err := url.Parse(s)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return "must be an absolute URL such as https://example.com"
		}
	case TypeEmail:
		a, err := mail.ParseAddress(s)
		if err != nil || a.Address != s {
			return "must be an e-mail address such as ops@example.com"
		}
	}
	return ""
}

// Resolve merges values over the variables' defaults and validates every
// variable. Unknown names are errors too. The result holds a value for every
// declared variable that has one.
func Resolve(vars []Variable, values map[string]string) (map[string]string, error) {
	out := map[string]string{}
	var errs []FieldError
	declared := map[string]bool{}
	for _, v := range vars {
		declared[v.Name] = true
		val, given := values[v.Name]
		if !given && v.Default != nil {
			val, given = *v.Default, true
		}
		if !given || (val == "" && v.Required) {
			if v.Required {
				errs = append(errs, FieldError{Field: v.Name, Message: "is required"})
			}
			continue
		}
		if val == "" && !v.Required {
			out[v.Name] = ""
			continue
		}
		if msg := v.checkValue(val); msg != "" {
			errs = append(errs, FieldError{Field: v.Name, Message: msg})
			continue
		}
		out[v.Name] = val
	}
	for name := range values {
		if !declared[name] {
			errs = append(errs, FieldError{Field: name, Message: "is not a variable of this stack version"})
		}
	}
	if len(errs) > 0 {
		sort.Slice(errs, func(i, j int) bool { return errs[i].Field < errs[j].Field })
		return nil, &ValidationError{Fields: errs}
	}
	return out, nil
}

// placeholder is a valid value of the type, used to check that a manifest
// loads before anybody has given values.
func (v Variable) placeholder() string {
	if v.Default != nil {
		return *v.Default
	}
	switch v.Type {
	case TypeNumber:
		if v.Min != nil {
			return strconv.FormatFloat(*v.Min, 'f', -1, 64)
		}
		return "1"
	case TypeBoolean:
		return "false"
	case TypeSelect:
		return v.Options[0]
	case TypePort:
		return "8080"
	case TypeURL:
		return "https://example.com"
	case TypeEmail:
		return "ops@example.com"
	}
	return "placeholder"
}
