package handlers

import (
	"errors"
	"reflect"
	"strings"

	"github.com/go-playground/validator/v10"

	"github.com/rampart-go/rampart/models"
)

// validate is the one validator of the package, configured to name fields
// by their JSON names and with the project's own rules:
//   - nocontrol: no control or format characters (single-line text);
//   - nocontrolml: the same, but line breaks and tabs are allowed;
//   - date: a strict YYYY-MM-DD calendar date (string or nullable string);
//   - timestamp: an RFC 3339 date and time;
//   - decimal=P.S: a decimal number of at most P digits, S of them after
//     the point (generated resources' decimal(p,s) fields).
type validate struct {
	v *validator.Validate
}

func newValidate() (validate, error) {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(jsonName)
	rules := map[string]validator.Func{
		"nocontrol":   func(fl validator.FieldLevel) bool { return !models.HasControl(fl.Field().String()) },
		"nocontrolml": func(fl validator.FieldLevel) bool { return !models.HasControlExceptNewlines(fl.Field().String()) },
		"date":        validDate,
		"timestamp":   func(fl validator.FieldLevel) bool { _, err := parseTimestamp(fl.Field().String()); return err == nil },
		"decimal":     func(fl validator.FieldLevel) bool { return validDecimal(fl.Field().String(), fl.Param()) },
	}
	for tag, fn := range rules {
		if err := v.RegisterValidation(tag, fn); err != nil {
			return validate{}, err
		}
	}
	return validate{v: v}, nil
}

func validDate(fl validator.FieldLevel) bool {
	f := fl.Field()
	switch v := f.Interface().(type) {
	case string:
		_, err := models.ParseDate(v)
		return err == nil
	case nullable[string]:
		if !v.Set || v.Null {
			return true
		}
		_, err := models.ParseDate(v.V)
		return err == nil
	}
	return false
}

// Struct validates a decoded request and returns a KindInvalid error (422)
// listing every offending field with a client-safe message.
func (v validate) Struct(req any) error {
	err := v.v.Struct(req)
	if err == nil {
		return nil
	}
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return models.Internal(err)
	}
	fields := make([]models.FieldError, 0, len(verrs))
	for _, fe := range verrs {
		fields = append(fields, models.FieldError{Field: fieldPath(fe), Message: ruleMessage(fe)})
	}
	return models.Invalid("The request has invalid fields.", fields...)
}

// fieldPath is the JSON path of the field without the struct name.
func fieldPath(fe validator.FieldError) string {
	ns := fe.Namespace()
	if _, rest, ok := strings.Cut(ns, "."); ok {
		return rest
	}
	return fe.Field()
}

// ruleMessage says, in our words, which rule a field breaks. Validator's own
// messages name Go types and are not for clients.
func ruleMessage(fe validator.FieldError) string {
	unit := " characters"
	switch fe.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map:
		unit = " items"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		unit = ""
	}
	switch fe.Tag() {
	case "required":
		return "is required"
	case "min", "gte":
		return "must be at least " + fe.Param() + unit
	case "max", "lte":
		return "must be at most " + fe.Param() + unit
	case "len":
		return "must be exactly " + fe.Param() + unit
	case "url":
		return "must be a URL"
	case "uuid4":
		return "must be a UUID (version 4, lower case)"
	case "alphanum":
		return "must contain only letters and digits"
	case "timestamp":
		return "must be an RFC 3339 date and time"
	case "decimal":
		digits, scale, _ := strings.Cut(fe.Param(), ".")
		return "must be a decimal number of at most " + digits + " digits, " + scale + " after the point"
	case "email":
		return "must be a valid e-mail address"
	case "oneof":
		return "must be one of: " + strings.ReplaceAll(fe.Param(), " ", ", ")
	case "nocontrol":
		return "must not contain control characters or line breaks"
	case "nocontrolml":
		return "must not contain control characters"
	case "date":
		return "must be a date in the form YYYY-MM-DD"
	case "unique":
		return "must not repeat items"
	}
	return "is invalid"
}
