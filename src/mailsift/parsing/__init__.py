"""mailsift.parsing"""
