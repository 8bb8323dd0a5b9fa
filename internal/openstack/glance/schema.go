package glance

import (
	"net/http"
	"slices"
)

// The JSON schemas python-glanceclient (and so Nova and the openstack CLI) fetches before it reads
// an image: GET /v2/schemas/image and /v2/schemas/images. The client builds its image model from
// them (warlock), so every attribute vflink returns is described here with Glance's type; other
// properties are strings (additionalProperties), as in Glance.

const uuidPattern = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"

// nullable is a JSON schema type that also allows null.
func nullable(t string) []string { return []string{"null", t} }

// enumOrNull lists allowed values with null first, as Glance's schema does for formats.
func enumOrNull(vals []string) []any {
	out := []any{nil}
	for _, v := range vals {
		out = append(out, v)
	}
	return out
}

type prop = map[string]any

// imageSchema is Glance's image schema for the attributes vflink serves.
func imageSchema() map[string]any {
	ro := func(p prop) prop { p["readOnly"] = true; return p }
	props := map[string]any{
		"id":               prop{"type": "string", "description": "An identifier for the image", "pattern": uuidPattern},
		"name":             prop{"type": nullable("string"), "description": "Descriptive name for the image", "maxLength": 255},
		"status":           ro(prop{"type": "string", "description": "Status of the image", "enum": []string{"queued", "saving", "active", "killed", "deleted", "uploading", "importing", "pending_delete", "deactivated"}}),
		"visibility":       prop{"type": "string", "description": "Scope of image accessibility", "enum": slices.Clone(visibilities)},
		"protected":        prop{"type": "boolean", "description": "If true, image will not be deletable."},
		"os_hidden":        prop{"type": "boolean", "description": "If true, image will not appear in default image list response."},
		"checksum":         ro(prop{"type": nullable("string"), "description": "md5 hash of image contents.", "maxLength": 32}),
		"os_hash_algo":     ro(prop{"type": nullable("string"), "description": "Algorithm to calculate the os_hash_value", "maxLength": 64}),
		"os_hash_value":    ro(prop{"type": nullable("string"), "description": "Hexdigest of the image contents using the algorithm specified by the os_hash_algo", "maxLength": 128}),
		"owner":            prop{"type": nullable("string"), "description": "Owner of the image", "maxLength": 255},
		"size":             ro(prop{"type": nullable("integer"), "description": "Size of image file in bytes"}),
		"virtual_size":     ro(prop{"type": nullable("integer"), "description": "Virtual size of image in bytes"}),
		"container_format": prop{"type": nullable("string"), "description": "Format of the container", "enum": enumOrNull(containerFormats)},
		"disk_format":      prop{"type": nullable("string"), "description": "Format of the disk", "enum": enumOrNull(diskFormats)},
		"created_at":       ro(prop{"type": "string", "description": "Date and time of image registration"}),
		"updated_at":       ro(prop{"type": "string", "description": "Date and time of the last image modification"}),
		"tags":             prop{"type": "array", "description": "List of strings related to the image", "items": prop{"type": "string", "maxLength": 255}},
		"direct_url":       ro(prop{"type": "string", "description": "URL to access the image file kept in external store"}),
		"min_ram":          prop{"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
		"min_disk":         prop{"type": "integer", "description": "Amount of disk space (in GB) required to boot image."},
		"self":             ro(prop{"type": "string", "description": "An image self url"}),
		"file":             ro(prop{"type": "string", "description": "An image file url"}),
		"schema":           ro(prop{"type": "string", "description": "An image schema url"}),
		"locations": prop{"type": "array", "description": "A set of URLs to access the image file kept in external store",
			"items": prop{"type": "object", "required": []string{"url", "metadata"},
				"properties": prop{"url": prop{"type": "string", "maxLength": 255}, "metadata": prop{"type": "object"}}}},
		"kernel_id":  prop{"type": nullable("string"), "is_base": false, "pattern": uuidPattern, "description": "ID of image stored in Glance that should be used as the kernel when booting an AMI-style image."},
		"ramdisk_id": prop{"type": nullable("string"), "is_base": false, "pattern": uuidPattern, "description": "ID of image stored in Glance that should be used as the ramdisk when booting an AMI-style image."},
	}
	return map[string]any{
		"name":                 "image",
		"properties":           props,
		"additionalProperties": prop{"type": "string"},
		"links": []map[string]string{
			{"rel": "self", "href": "{self}"},
			{"rel": "enclosure", "href": "{file}"},
			{"rel": "describedby", "href": "{schema}"},
		},
	}
}

// imagesSchema is the schema of an image list page.
func imagesSchema() map[string]any {
	return map[string]any{
		"name": "images",
		"properties": map[string]any{
			"images": prop{"type": "array", "items": imageSchema()},
			"schema": prop{"type": "string"},
			"first":  prop{"type": "string"},
			"next":   prop{"type": "string"},
		},
		"links": []map[string]string{
			{"rel": "first", "href": "{first}"},
			{"rel": "next", "href": "{next}"},
			{"rel": "describedby", "href": "{schema}"},
		},
	}
}

func (s *Service) showImageSchema(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, imageSchema())
	return nil
}

func (s *Service) showImagesSchema(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, imagesSchema())
	return nil
}
