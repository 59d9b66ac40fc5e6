package main

import (
	"testing"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// TestContractName checks the naming rule of the per-file contract API.
func TestContractName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		path, pkg, want string
	}{
		{"activity/v1/events.proto", "activity.v1", "ActivityEvents"},
		{"eventchat/testing/v1/testing.proto", "eventchat.testing.v1", "TestingEvents"},
		{"eventchat/testing/v1/policy.proto", "eventchat.testing.v1", "TestingPolicyEvents"},
		{"activity/v1/activity_events.proto", "activity.v1", "ActivityEvents"},
		{"billing/v1/invoice.proto", "billing.v1", "BillingInvoiceEvents"},
		{"billing/v2beta1/invoice_paid.proto", "billing.v2beta1", "BillingInvoicePaidEvents"},
		{"orders/order-events.proto", "orders", "OrdersOrderEvents"},
		{"root.proto", "", "RootEvents"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			fd := &descriptorpb.FileDescriptorProto{
				Name:    proto.String(tc.path),
				Package: proto.String(tc.pkg),
				Syntax:  proto.String("proto3"),
				Options: &descriptorpb.FileOptions{GoPackage: proto.String("example.com/x;x")},
			}
			plugin, err := protogen.Options{}.New(request("", fd))
			if err != nil {
				t.Fatal(err)
			}
			file := plugin.FilesByPath[tc.path]
			if got := contractName(file); got != tc.want {
				t.Errorf("contractName(%s in package %q) = %s, want %s", tc.path, tc.pkg, got, tc.want)
			}
		})
	}
}

// TestContractNameCollision checks that a contract API name that is taken
// by a message of the file fails generation, naming both.
func TestContractNameCollision(t *testing.T) {
	t.Parallel()
	file := badFile(withEvent("bad.happened", "BAD"))
	file.MessageType = append(file.MessageType, &descriptorpb.DescriptorProto{Name: proto.String("BadEventsHandler")})
	_, err := runGenerate(t, request("", file))
	want := "bad/v1/bad.proto: the contract API of this file is named BadEvents by the file and package names, " +
		"but BadEventsHandler is already the Go name of message bad.v1.BadEventsHandler; rename the file"
	if err == nil || err.Error() != want {
		t.Errorf("generate error:\n\t%v\nwant:\n\t%s", err, want)
	}
}
