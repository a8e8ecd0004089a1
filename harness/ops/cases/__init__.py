"""ops.cases"""
