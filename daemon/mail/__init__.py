"""One mail understood, pure: parsing, MIME tree and building, header fields and addresses,
HTML to text, reply cutting, classification, thread keys.
"""
