package awsfake

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"sync"
)

const (
	ec2Version = "2016-11-15"
	ec2NS      = "http://ec2.amazonaws.com/doc/2016-11-15/"
)

// EC2 serves the two EC2 reads provision-stack makes (EC2's own query
// protocol: ImageId.1, Filter.1.Value.1, lowercase XML without a Result
// wrapper).
type EC2 struct {
	s       *Server
	mu      sync.Mutex
	images  []Image
	subnets map[string]string // subnet id → vpc id
}

// Image is an AMI the fake knows.
type Image struct {
	ID, Name, Owner, Created, RootDevice string
}

// AddImage registers an AMI; Owner "amazon" makes it match owner filters.
func (e *EC2) AddImage(im Image) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.images = append(e.images, im)
}

// AddSubnet registers a subnet of a VPC.
func (e *EC2) AddSubnet(subnet, vpc string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.subnets == nil {
		e.subnets = map[string]string{}
	}
	e.subnets[subnet] = vpc
}

func indexed(form url.Values, prefix string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := form[prefix+"."+strconv.Itoa(i)]
		if !ok {
			return out
		}
		out = append(out, v[0])
	}
}

func (e *EC2) serve(w http.ResponseWriter, form url.Values) {
	action := form.Get("Action")
	rid := e.s.requestID()
	if e.s.count("EC2." + action) {
		ec2Error(w, rid, http.StatusServiceUnavailable, "RequestLimitExceeded", "Request limit exceeded.")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var body any
	switch action {
	case "DescribeImages":
		type item struct {
			ImageID        string `xml:"imageId"`
			Name           string `xml:"name"`
			State          string `xml:"imageState"`
			Owner          string `xml:"imageOwnerAlias"`
			CreationDate   string `xml:"creationDate"`
			RootDeviceName string `xml:"rootDeviceName"`
		}
		ids, owners := indexed(form, "ImageId"), indexed(form, "Owner")
		var patterns []string
		for i := 1; ; i++ {
			n := form.Get("Filter." + strconv.Itoa(i) + ".Name")
			if n == "" {
				break
			}
			if n == "name" {
				patterns = append(patterns, indexed(form, "Filter."+strconv.Itoa(i)+".Value")...)
			}
		}
		var items []item
		for _, im := range e.images {
			if len(ids) > 0 && !contains(ids, im.ID) || len(owners) > 0 && !contains(owners, im.Owner) || !matchAny(patterns, im.Name) {
				continue
			}
			items = append(items, item{im.ID, im.Name, "available", im.Owner, im.Created, im.RootDevice})
		}
		if len(ids) > 0 && len(items) == 0 {
			ec2Error(w, rid, http.StatusBadRequest, "InvalidAMIID.NotFound", fmt.Sprintf("The image id '[%s]' does not exist", ids[0]))
			return
		}
		body = struct {
			XMLName   xml.Name `xml:"DescribeImagesResponse"`
			NS        string   `xml:"xmlns,attr"`
			RequestID string   `xml:"requestId"`
			Items     []item   `xml:"imagesSet>item"`
		}{NS: ec2NS, RequestID: rid, Items: items}
	case "DescribeSubnets":
		type item struct {
			SubnetID string `xml:"subnetId"`
			VpcID    string `xml:"vpcId"`
		}
		var items []item
		for _, id := range indexed(form, "SubnetId") {
			vpc, ok := e.subnets[id]
			if !ok {
				ec2Error(w, rid, http.StatusBadRequest, "InvalidSubnetID.NotFound", fmt.Sprintf("The subnet ID '%s' does not exist", id))
				return
			}
			items = append(items, item{id, vpc})
		}
		body = struct {
			XMLName   xml.Name `xml:"DescribeSubnetsResponse"`
			NS        string   `xml:"xmlns,attr"`
			RequestID string   `xml:"requestId"`
			Items     []item   `xml:"subnetSet>item"`
		}{NS: ec2NS, RequestID: rid, Items: items}
	default:
		e.s.violation("EC2 action %q is not served", action)
		ec2Error(w, rid, http.StatusBadRequest, "InvalidAction", "The action "+action+" is not valid for this web service.")
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	if err := xml.NewEncoder(w).Encode(body); err != nil {
		e.s.violation("encode %s: %v", action, err)
	}
}

func matchAny(patterns []string, name string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

func ec2Error(w http.ResponseWriter, rid string, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	type xerr struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	_ = xml.NewEncoder(w).Encode(struct {
		XMLName   xml.Name `xml:"Response"`
		Errors    []xerr   `xml:"Errors>Error"`
		RequestID string   `xml:"RequestID"`
	}{Errors: []xerr{{code, msg}}, RequestID: rid})
}
