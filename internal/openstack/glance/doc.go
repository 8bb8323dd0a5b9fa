// Package glance is vflink's Image v2 face: the subset of Glance that `openstack image create`
// and `openstack server create --image` need.
//
// vflink images are metadata only. An image is "active" as soon as it is created; the host agent
// finds what to boot through the image's properties (by convention the `location` property, a
// path or URL on the compute host). Data uploaded with PUT /v2/images/{id}/file (the CLI does so
// when its stdin is not a terminal) is hashed and counted, then discarded: the image records its
// size and checksums, as Glance would.
//
// Visibility follows Glance: a project sees its own images, public ones and community ones (a
// list shows community images only with ?visibility=community); others' private or shared images
// are 404. Only an admin makes an image public. A protected image cannot be deleted.
//
// Request bodies are decoded field by field so that every bad input gets a 400 naming the field and
// value; every error leaves through writeError in the shape Glance's WSGI layer uses,
// {"code": "404 Not Found", "title": "Not Found", "message": "..."}.
//
// Key layout below the store prefix:
//
//	images/<id>   Image (extra properties under "properties"; flattened on the wire)
package glance
